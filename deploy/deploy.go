// Package deploy holds what operators deploy with: example configurations
// and zone files (embedded, so `geodnsd -demo` needs no outside files),
// systemd units and alert rules. Tests load every example.
package deploy

import (
	"embed"
	"io/fs"
)

//go:embed examples
var examples embed.FS

// Examples is the examples tree: examples/<name>/geodnsd.toml and its zones.
func Examples() fs.FS {
	sub, err := fs.Sub(examples, "examples")
	if err != nil {
		panic(err) // the path is a constant checked by tests
	}
	return sub
}

// DemoConfig is the path of the demo configuration inside Examples().
const DemoConfig = "demo/geodnsd.toml"
