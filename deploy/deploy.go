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

//go:embed lab
var lab embed.FS

// Lab is the six-node lab's files: node.toml.tmpl (a text/template of one
// node's configuration), zones/ and the GeoIP2 test database.
func Lab() fs.FS {
	sub, err := fs.Sub(lab, "lab")
	if err != nil {
		panic(err) // the path is a constant checked by tests
	}
	return sub
}
