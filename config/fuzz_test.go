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
	f.Add([]byte("[node]\nid = \"ns1\"\nstate_dir = \"s\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[cluster]\nvote_ttl = \"9s\"\nmin_quorum = 1\nnodes = [\n  { id = \"ns1\", raft = \"127.0.0.1:7000\", voter = true },\n]\n"))
	f.Add([]byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[cluster]\nca = \"c\"\nnodes = [{ id = \"ns1\", raft = \"127.0.0.1:7000\", http = \"h:1\" }, { id = \"ns2\", raft = \"127.0.0.2:7000\" }]\n"))
	f.Add([]byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[sites.d]\nendpoints = [\"192.0.2.1\"]\ncoordinates = [32.7, -96.8]\n[services.x]\nnames = [\"X.example.com\"]\nsites = [\"d\"]\nttl = \"30s\"\nfailback = \"auto\"\n[[services.x.routes]]\nname = \"lan\"\nprefixes = [\"10.0.0.0/8\"]\nsites = [\"d\"]\n[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\"]\ncountries = [\"GB\"]\nsubdivisions = [\"US-TX\"]\nasns = [64500]\nnearest = true\n"))
	f.Add([]byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[geo]\ndatabase = \"x.mmdb\"\n[sites.d]\nendpoints = [\"192.0.2.1\"]\ncoordinates = [nan, inf]\n"))
	f.Add([]byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[http]\nstatus_rate = nan\n[[http.tokens]]\nname = \"a\"\nsha256 = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"\nrole = \"read\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "f.toml")
		if err == nil {
			if c == nil || c.Node.ID == "" || len(c.DNS.Listen) == 0 {
				t.Fatalf("accepted an invalid config: %+v", c)
			}
			if d := c.Digest(); d != c.Digest() || len(d) != len("sha256:")+64 {
				t.Fatalf("digest %q unstable or malformed", d)
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
