package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfigRefusesWhatStartRefuses: every limit has one owner, so
// -check-config refuses exactly what start-up refuses, with the file, line
// and key path, and start-up refuses it before binding anything.
func TestCheckConfigRefusesWhatStartRefuses(t *testing.T) {
	head := "[node]\nid = \"ns-test\"\n[dns]\nlisten = [\"127.0.0.1:0\"]\n" // 4 lines
	cases := []struct {
		name    string
		src     string
		noZones bool
		want    []string // substrings of stderr; "$DIR" is the config's directory
	}{
		{"nsid of 200 bytes", head + "nsid = \"" + strings.Repeat("n", 200) + "\"\n",
			false, []string{"geodnsd.toml:5: dns.nsid: 200 bytes: at most 128"}},
		{"endpoint 192.0.2.300", head + "[sites.d]\nendpoints = [\"192.0.2.300\"]\n",
			false, []string{"geodnsd.toml:6: sites.d.endpoints[0]:", `"192.0.2.300"`, "not a valid IPv4 address"}},
		{"endpoint 192.0.2", head + "[sites.d]\nendpoints = [\"192.0.2\"]\n",
			false, []string{"geodnsd.toml:6: sites.d.endpoints[0]:", `"192.0.2"`, "not a valid IPv4 address"}},
		{"missing zones directory", head + "[zones]\ndir = \"nowhere\"\n",
			true, []string{"geodnsd.toml:6: zones.dir: $DIR/nowhere: no such directory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "geodnsd.toml")
			if err := os.WriteFile(cfg, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			if !tc.noZones {
				writeZone(t, dir, "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n")
			}
			for _, args := range [][]string{{"-check-config", "-config", cfg}, {"-config", cfg}} {
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // should start-up wrongly succeed, it stops at once
				var out, errb bytes.Buffer
				if code := run(ctx, args, &out, &errb, nil); code != exitConfig {
					t.Errorf("%v: exit %d, want %d\n%s", args, code, exitConfig, errb.String())
				}
				for _, w := range tc.want {
					w = strings.ReplaceAll(w, "$DIR", dir)
					if !strings.Contains(errb.String(), w) {
						t.Errorf("%v: stderr %q\ndoes not contain %q", args, errb.String(), w)
					}
				}
			}
		})
	}
}
