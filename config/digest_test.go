package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDigestSameForEveryNode: two per-node files of one cluster (different
// node id, state dir, listen addresses, certificates, log level, names
// written in another case, a default written out) have one digest; zone data
// order does not matter.
func TestDigestSameForEveryNode(t *testing.T) {
	dir := clusterDir(t)
	copyInto(t, dir, "testdata/cluster/ns1.toml", "testdata/cluster/ns2.toml")
	ns1, err := Load(filepath.Join(dir, "ns1.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ns2, err := Load(filepath.Join(dir, "ns2.toml"))
	if err != nil {
		t.Fatal(err)
	}
	za, zb := []byte("example.com. 3600 IN SOA ...\n"), []byte("example.net. 3600 IN SOA ...\n")
	d1, d2 := ns1.Digest(za, zb), ns2.Digest(zb, za)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d1) {
		t.Fatalf("digest %q is not sha256:<hex>", d1)
	}
	if d1 != d2 {
		t.Errorf("ns1 and ns2 of one cluster: %s != %s", d1, d2)
	}
	for range 10 { // map iteration order must not leak into the encoding
		if d := ns1.Digest(za, zb); d != d1 {
			t.Fatalf("digest not deterministic: %s then %s", d1, d)
		}
	}
	if d := ns1.Digest(za); d == d1 {
		t.Error("a missing zone gives the same digest")
	}
	if d := ns1.Digest(za, []byte("example.net. 60 IN SOA ...\n")); d == d1 {
		t.Error("changed zone data gives the same digest")
	}
}

// TestDigestParts changes one thing at a time in ns1.toml: a shared part
// must change the digest, a per-node part must not.
func TestDigestParts(t *testing.T) {
	dir := clusterDir(t)
	src, err := os.ReadFile("testdata/cluster/ns1.toml")
	if err != nil {
		t.Fatal(err)
	}
	digest := func(t *testing.T, text string) string {
		t.Helper()
		file := filepath.Join(dir, "g.toml")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		return c.Digest()
	}
	orig := digest(t, string(src))
	cases := []struct {
		name     string
		old, new string
		same     bool
	}{
		{"service site order", `sites = ["dallas", "losangeles"]`, `sites = ["losangeles", "dallas"]`, false},
		{"service failback", "failback = \"manual\"\n", "failback = \"auto\"\n", false},
		{"service ttl", "failback = \"manual\"\n", "failback = \"manual\"\nttl = \"60s\"\n", false},
		{"service default written out", "failback = \"manual\"\n", "failback = \"manual\"\nttl = \"30s\"\nstable_for = \"1m\"\n", true},
		{"service name", `"owa.example.com"]`, `"webmail.example.com"]`, false},
		{"service route", "failback = \"manual\"\n", "failback = \"manual\"\n[[services.cas.routes]]\nname = \"lan\"\nprefixes = [\"10.0.0.0/8\"]\nsites = [\"losangeles\"]\n", false},
		{"endpoint address", `address = "198.51.100.10"`, `address = "198.51.100.11"`, false},
		{"endpoint probe", `probe = "127.0.0.22:8080"`, `probe = "127.0.0.23:8080"`, true},
		{"check interval default", "interval = \"2s\"", "interval = \"3s\"", false},
		{"check type", "name = \"web\"\ntype = \"http\"\n\n[sites.losangeles]", "name = \"web\"\ntype = \"https\"\n\n[sites.losangeles]", false},
		{"coordinates", "[32.78, -96.80]", "[32.78, -96.81]", false},
		{"cluster voter", `http = "127.0.0.16:8053", voter = true }`, `http = "127.0.0.16:8053", voter = false }`, false},
		{"cluster node address", `raft = "127.0.0.15:7000"`, `raft = "127.0.0.15:7001"`, false},
		{"cluster node order", "  { id = \"ns5\", raft = \"127.0.0.15:7000\", http = \"127.0.0.15:8053\" },\n  { id = \"ns6\", raft = \"127.0.0.16:7000\", http = \"127.0.0.16:8053\", voter = true },\n",
			"  { id = \"ns6\", raft = \"127.0.0.16:7000\", http = \"127.0.0.16:8053\", voter = true },\n  { id = \"ns5\", raft = \"127.0.0.15:7000\", http = \"127.0.0.15:8053\" },\n", true},
		{"vote ttl", `vote_ttl = "12s"`, `vote_ttl = "13s"`, false},
		{"min quorum", `max_clock_skew = "1s"`, "max_clock_skew = \"1s\"\nmin_quorum = 5", false},
		{"history limit", `max_clock_skew = "1s"`, "max_clock_skew = \"1s\"\nhistory_limit = 50", false},
		{"token role", `role = "operator"`, `role = "read"`, false},
		{"token hash case", `sha256 = "2cf24dba5fb0a30e`, `sha256 = "2CF24DBA5FB0A30E`, true},
		{"geo database", "[checks]", "[geo]\ndatabase = \"" + mustAbs(t, "../testdata/geoip/GeoIP2-City-Test.mmdb") + "\"\n[checks]", false},
		{"node state dir", `state_dir = "state/ns1"`, `state_dir = "/var/lib/geodnsd"`, true},
		{"dns listen", `listen = ["127.0.0.11:5353"]`, "listen = [\"127.0.0.11:53\"]\nnsid = \"one\"\nversion_bind = \"x\"", true},
		{"http listen and limits", `listen = "127.0.0.11:8053"`, "listen = \"127.0.0.11:9053\"\npprof = true\nstatus_rate = 1", true},
		{"cluster listen", `listen = "127.0.0.11:7000"`, `listen = "0.0.0.0:7000"`, true},
		{"cluster join", `max_clock_skew = "1s"`, "max_clock_skew = \"1s\"\njoin = true", true},
		{"log", `level = "info"`, "level = \"debug\"\nformat = \"json\"", true},
		{"zones dir", "\n[log]\n", "\n[zones]\ndir = \"elsewhere\"\n[log]\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(src), tc.old) {
				t.Fatalf("ns1.toml has no %q", tc.old)
			}
			d := digest(t, strings.Replace(string(src), tc.old, tc.new, 1))
			if (d == orig) != tc.same {
				t.Errorf("digest changed = %v, want %v", d != orig, !tc.same)
			}
		})
	}
	// The geo database is identified by its metadata, not its path.
	c1, c2 := Default(), Default()
	c1.Geo.Database = mustAbs(t, "../testdata/geoip/GeoIP2-City-Test.mmdb")
	copyInto(t, dir, c1.Geo.Database)
	c2.Geo.Database = filepath.Join(dir, "GeoIP2-City-Test.mmdb")
	if c1.Digest() != c2.Digest() {
		t.Error("the same database at another path changes the digest")
	}
	c2.Geo.Database = mustAbs(t, "../testdata/geoip/GeoLite2-City-Test.mmdb")
	if c1.Digest() == c2.Digest() {
		t.Error("another database gives the same digest")
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
