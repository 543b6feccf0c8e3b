package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMinimal(t *testing.T) {
	src := `
[node]
id = "ns1"
[dns]
listen = ["127.0.0.1:5353", "[::1]:5353"]
tcp_idle_timeout = "3s"
[zones]
dir = "zones"
[http]
listen = "127.0.0.1:8053"
`
	c, err := Parse([]byte(src), "/etc/geodnsd/geodnsd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.ID != "ns1" || len(c.DNS.Listen) != 2 || c.DNS.Listen[1].String() != "[::1]:5353" {
		t.Errorf("decoded %+v", c)
	}
	if c.DNS.NSID != "ns1" {
		t.Errorf("nsid default = %q, want the node id", c.DNS.NSID)
	}
	if c.DNS.TCPIdleTimeout.Duration != 3*time.Second || c.DNS.UDPSize != 1232 || c.DNS.TCPMaxConnections != 1000 {
		t.Errorf("dns = %+v", c.DNS)
	}
	if c.Zones.Dir != "/etc/geodnsd/zones" {
		t.Errorf("zones.dir = %q, want it relative to the config file", c.Zones.Dir)
	}
	if c.DNS.SocketsPerAddress < 1 {
		t.Errorf("sockets_per_address = %d, want one per core", c.DNS.SocketsPerAddress)
	}
}

func TestParseErrorsArePositioned(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // each must appear in the error text
	}{
		{"unknown key", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\nlisen = 1\n",
			[]string{"f.toml:5: dns.lisen: unknown key \"lisen\""}},
		{"unknown table", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n\n[zone]\ndir = \"x\"\n",
			[]string{"f.toml:7: zone.dir: unknown key"}},
		{"bare integer duration", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\ntcp_idle_timeout = 5\n",
			[]string{"f.toml:5:", "no unit"}},
		{"bad address", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"localhost:53\"]\n",
			[]string{"f.toml:4:", "bad address \"localhost:53\""}},
		{"missing id", "[dns]\nlisten = [\"127.0.0.1:53\"]\n",
			[]string{"f.toml: node.id: missing"}},
		{"duplicate listen and bad size", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\", \"127.0.0.1:53\"]\nudp_size = 100\n",
			[]string{"f.toml:4: dns.listen[1]: 127.0.0.1:53 is listed twice", "f.toml:5: dns.udp_size: 100 is out of range"}},
		{"wrong type", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\nudp_size = \"big\"\n",
			[]string{"f.toml:5: dns.udp_size: incompatible types"}},
		{"syntax", "[node]\nid = \"ns1\n", []string{"f.toml:2:"}},
		{"nsid over the server's limit", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\nnsid = \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn\"\n",
			[]string{"f.toml:5: dns.nsid: 129 bytes: at most 128"}},
		{"tsig key", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\ntsig_keys = [{ name = \"xfr.key\", algorithm = \"hmac-sha999\", secret = \"c2VjcmV0\" }]\n",
			[]string{"f.toml:5: dns.tsig_keys[0].algorithm: \"hmac-sha999\": want one of"}},
		{"tsig key hmac-md5 (miekg/dns cannot sign with it)", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\ntsig_keys = [{ name = \"xfr.key\", algorithm = \"hmac-md5.sig-alg.reg.int\", secret = \"c2VjcmV0\" }]\n",
			[]string{"f.toml:5: dns.tsig_keys[0].algorithm: \"hmac-md5.sig-alg.reg.int\": want one of"}},
		{"notify without port", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\nnotify = [\"192.0.2.53:0\"]\n",
			[]string{"f.toml:5: dns.notify[0]: 192.0.2.53:0: give the secondary's port"}},
		{"bad log level", "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[log]\nlevel = \"loud\"\n",
			[]string{"f.toml:6:", "bad log level"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "f.toml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestPositions(t *testing.T) {
	src := `
# comment
[a]
x = 1
list = [
  "y = 2",
]
z = """
k = v
"""
[[a.items]]
name = "one"
[[a.items]]
name = "two"
[a.items.sub]
deep = true
"quoted.key" = 3
`
	p := scanPositions([]byte(src))
	want := map[string]int{
		"a": 3, "a.x": 4, "a.list": 5, "a.z": 8, "a.items": 11, "a.items[0]": 11, "a.items[0].name": 12,
		"a.items[1].name": 14, "a.items[1].sub.deep": 16, "a.items[1].sub.quoted.key": 17,
		"a.items[1].missing": 13, "a.y": 3, "nothing": 0,
	}
	for k, w := range want {
		if got := p.line(k); got != w {
			t.Errorf("line(%q) = %d, want %d", k, got, w)
		}
	}
}

// TestLoadZonesDir: Load resolves zones.dir against the config file and
// refuses a missing one with its key path, line and full path.
func TestLoadZonesDir(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "g.toml")
	src := "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[zones]\ndir = \"z\"\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	want := p + ":6: zones.dir: " + filepath.Join(dir, "z") + ": no such directory"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %s", err, want)
	}
	if err := os.Mkdir(filepath.Join(dir, "z"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Zones.Dir != filepath.Join(dir, "z") {
		t.Errorf("zones.dir %q", c.Zones.Dir)
	}
}
