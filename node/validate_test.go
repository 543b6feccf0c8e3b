package node_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geodnsd/geodnsd/node"
)

// TestValidateServiceNamesPositioned: a service name outside every served
// zone, or one the zone file also defines, is refused by Validate (and so
// by -check-config and start-up) at the key that names it, with its line,
// and, for a conflict, the zone file's line too.
func TestValidateServiceNamesPositioned(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "zones"), 0o755)
	zone := oneNodeZone + "www IN A 192.0.2.99\n"
	if err := os.WriteFile(filepath.Join(dir, "zones", "example.com.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `[node]
id = "solo"
[dns]
listen = ["127.0.0.1:5353"]
[sites.dallas]
endpoints = ["192.0.2.10"]
[services.www]
names = [
  "cas.example.com",
  "www.example.org",
  "www.example.com",
]
sites = ["dallas"]
`
	file := filepath.Join(dir, "geodnsd.toml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := node.Validate(node.Source{File: file})
	if err == nil || !errors.Is(err, node.ErrConfig) {
		t.Fatalf("Validate = %v, want a configuration error", err)
	}
	for _, want := range []string{
		file + ":10: services.www.names[1]: www.example.org.: not in any served zone",
		file + ":11: services.www.names[2]: www.example.com.: the zone file also has A records there (",
		"example.com.zone:6)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "cas.example.com") {
		t.Errorf("a good name is reported:\n%v", err)
	}
}
