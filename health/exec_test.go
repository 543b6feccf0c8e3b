package health

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// script writes an executable shell script and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExec(t *testing.T) {
	report := script(t, `
echo
echo "site=$GEODNSD_SITE endpoint=$GEODNSD_ENDPOINT address=$GEODNSD_ADDRESS probe=$GEODNSD_PROBE arg=$1"
echo "second line"
exit "${2:-0}"
`)
	quiet := script(t, "echo 'disk full' >&2\nexit 3\n")
	slow := script(t, "sleep 30 &\nwait\n") // a child holding the pipes too
	cases := []struct {
		name    string
		command string
		err     string
		detail  string
	}{
		{"exit 0, first line kept, target in env", fmt.Sprintf("[%q, \"x y\"]", report), "",
			"site=s endpoint=e address=192.0.2.1 probe=127.0.0.1 arg=x y"},
		{"exit 2", fmt.Sprintf("[%q, \"a\", \"2\"]", report), "exit status 2: site=s", ""},
		{"stderr when stdout is empty", fmt.Sprintf("[%q]", quiet), "exit status 3: disk full", ""},
		{"killed at the timeout", fmt.Sprintf("[%q]", slow), "timed out", ""},
		{"no such program", `["/nonexistent/check"]`, "no such file", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "type = \"exec\"\ninterval = \"2s\"\ntimeout = \"500ms\"\ncommand = "+tc.command)
			r := runProbe(t, c, false, "127.0.0.1:0")
			wantResult(t, r, tc.err)
			if r.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", r.Detail, tc.detail)
			}
		})
	}
}
