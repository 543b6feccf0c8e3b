package config

import (
	"errors"
	"testing"
)

// FuzzLoadConfig: any text either parses into a valid config or fails with
// *Error values that carry a message; it never panics.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:5353\", \"[::1]:5353\"]\n[zones]\ndir = \"zones\"\n[http]\nlisten = \"127.0.0.1:8053\"\n"))
	f.Add([]byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\ntcp_idle_timeout = 5\n"))
	f.Add([]byte("[[a.b]]\nx = \"\"\"\nq = 1\n\"\"\"\n[a.b.c]\n'k.e' = [\n1,\n]\n"))
	f.Add([]byte("[sites.dallas]\nendpoints = [\"192.0.2.10\"]\n[[sites.dallas.checks]]\nname = \"owa\"\ntype = \"https\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "f.toml")
		if err == nil {
			if c == nil || c.Node.ID == "" || len(c.DNS.Listen) == 0 {
				t.Fatalf("accepted an invalid config: %+v", c)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T %v is not config.Errors", err, err)
		}
		for _, e := range es {
			if e.Msg == "" {
				t.Fatalf("error without a message: %+v", e)
			}
		}
	})
}
