package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHealthExample(t *testing.T) {
	c, err := Load("testdata/health.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sites) != 3 {
		t.Fatalf("sites = %v", c.Sites)
	}
	if c.Checks.Interval.Duration != 10*time.Second || c.Checks.Rise != 3 || c.Checks.Fall != DefaultFall {
		t.Errorf("defaults = %+v", c.Checks)
	}
	d := c.Sites["dallas"]
	if d.Name != "dallas" {
		t.Errorf("site name = %q", d.Name)
	}
	wantEP := []Endpoint{
		{Name: "dal1", Address: "192.0.2.10", Probe: "127.0.0.1", ProbeHost: "127.0.0.1"},
		{Name: "192.0.2.11", Address: "192.0.2.11", Probe: "127.0.0.1:8443", ProbeHost: "127.0.0.1", ProbePort: 8443},
		{Name: "192.0.2.12", Address: "192.0.2.12", ProbeHost: "192.0.2.12"},
	}
	for i, w := range wantEP {
		if d.Endpoints[i] != w {
			t.Errorf("endpoint[%d] = %+v, want %+v", i, d.Endpoints[i], w)
		}
	}
	byName := map[string]*Check{}
	for _, ch := range d.Checks {
		byName[ch.Name] = ch
	}
	owa := byName["owa"]
	if owa.Port != 443 || owa.Method != "GET" || owa.Interval.Duration != 10*time.Second ||
		owa.Timeout.Duration != 2*time.Second || owa.Rise != 3 || owa.Fall != 3 || owa.SiteWide() {
		t.Errorf("owa = %+v", owa)
	}
	if !owa.BodyRegexp.MatchString("ok then") || !owa.HeaderMatch["Content-Type"].MatchString("text/html") {
		t.Errorf("owa regexps not compiled: %+v", owa)
	}
	if s := byName["smtp"]; s.Port != 25 || s.Fall != 5 || s.Timeout.Duration != 8*time.Second {
		t.Errorf("smtp = %+v (timeout must default to 80%% of the interval)", s)
	}
	if s := byName["cert"]; !s.SiteWide() || s.Address != "cas.example.com:443" || s.WarnValidity.Duration != 14*24*time.Hour {
		t.Errorf("cert = %+v", s)
	}
	if s := byName["ns"]; s.Query != "cas.example.com." || s.RCode != "NOERROR" || s.Transport != "udp" || s.Port != 53 {
		t.Errorf("ns = %+v", s)
	}
	if s := byName["script"]; s.Port != 0 || s.Timeout.Duration != 24*time.Second {
		t.Errorf("script = %+v", s)
	}
	sy := d.Sync
	if sy == nil || sy.Name != "sync" || !sy.SiteWide() || sy.Op != "<=" || sy.Value != int64(0) ||
		len(sy.JSONPath.Steps) != 1 || sy.JSONPath.Steps[0].Key != "copy_queue_length" {
		t.Errorf("sync = %+v", sy)
	}
	if la := c.Sites["losangeles"]; la.Sync == nil || la.Sync.Type != CheckExec || la.Sync.SiteWide() {
		t.Errorf("losangeles sync = %+v", la.Sync)
	}
}

// base is a valid head to which each error case appends its sites.
const base = "[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n" // 4 lines

func TestHealthErrorsArePositioned(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string // each must appear in the error text, after "f.toml:"
	}{
		{"no endpoints", "[sites.dallas]\n[[sites.dallas.checks]]\nname = \"a\"\ntype = \"tcp\"\nport = 1\n",
			[]string{"5: sites.dallas.endpoints: missing"}},
		{"bad site name", "[sites.Dallas]\nendpoints = [\"192.0.2.1\"]\n",
			[]string{"5: sites.Dallas: site name \"Dallas\""}},
		{"unknown type", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"ftp\"\n",
			[]string{"9: sites.d.checks[0].type: unknown check type \"ftp\""}},
		{"tcp needs port", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"http\"\nport = 8080\n[[sites.d.checks]]\nname = \"b\"\ntype = \"tcp\"\n",
			[]string{"11: sites.d.checks[1].port: required for type \"tcp\""}},
		{"duplicate check", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"smtp\"\n[[sites.d.checks]]\nname = \"a\"\ntype = \"smtp\"\n",
			[]string{"11: sites.d.checks[1].name: check \"a\" is defined twice"}},
		{"duplicate endpoint", "[sites.d]\nendpoints = [\"192.0.2.1\", { address = \"192.0.2.1\", probe = \"127.0.0.1\" }]\n",
			[]string{"6: sites.d.endpoints[1]: endpoint \"192.0.2.1\" is listed twice"}},
		{"endpoint that is a broken IPv4 address", "[sites.d]\nendpoints = [\"192.0.2.300\", \"192.0.2\", \"host.example.\"]\n",
			[]string{`6: sites.d.endpoints[0]: address "192.0.2.300" is not a valid IPv4 address`,
				`6: sites.d.endpoints[1]: address "192.0.2" is not a valid IPv4 address`}},
		{"same address under two names", "[sites.d]\nendpoints = [{ name = \"a\", address = \"2001:db8::1\" }, { name = \"b\", address = \"2001:DB8:0::1\" }]\n",
			[]string{"6: sites.d.endpoints[1]: address 2001:DB8:0::1 is listed twice (also at endpoints[0])"}},
		{"addresses and a host name", "[sites.d]\nendpoints = [\"192.0.2.1\", \"lb.example.net\"]\n",
			[]string{"6: sites.d.endpoints[1]: a site's endpoints are either addresses or host names, not both"}},
		{"bad endpoint key", "[sites.d]\nendpoints = [{ adress = \"192.0.2.1\" }]\n",
			[]string{"6:", "unknown key \"adress\""}},
		{"bad endpoint address", "[sites.d]\nendpoints = [\"192.0.2.1:80\"]\n",
			[]string{"6: sites.d.endpoints[0]: address \"192.0.2.1:80\""}},
		{"bad regexp", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"https\"\nbody_regexp = \"(unclosed\"\n",
			[]string{"10:", "bad regexp \"(unclosed\""}},
		{"bare integer interval", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"https\"\ninterval = 5\n",
			[]string{"10:", "no unit"}},
		{"interval too short", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"https\"\ninterval = \"500ms\"\n",
			[]string{"10: sites.d.checks[0].interval: 500ms is too short (minimum 1s)"}},
		{"timeout not below interval", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"https\"\ninterval = \"2s\"\ntimeout = \"2s\"\n",
			[]string{"11: sites.d.checks[0].timeout: 2s must be shorter than the interval"}},
		{"default timeout not below check interval", "[checks]\ntimeout = \"3s\"\n[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"https\"\ninterval = \"2s\"\n",
			[]string{"6: checks.timeout: 3s must be shorter than the interval of sites.d.checks[0] (2s)"}},
		{"defaults", "[checks]\ninterval = \"100ms\"\nfall = 0\nrise = -1\n",
			[]string{"6: checks.interval: 100ms is too short", "8: checks.rise: -1 is out of range"}},
		{"field of another type", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"tcp\"\nport = 22\npath = \"/\"\n",
			[]string{"11: sites.d.checks[0].path: does not apply to a check of type \"tcp\""}},
		{"unknown check key", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"tcp\"\nport = 22\nsend_line = \"x\"\n",
			[]string{"11: sites.d.checks[0].send_line: unknown key"}},
		{"unknown keys in two checks", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"tcp\"\nport = 22\n[[sites.d.checks]]\nname = \"b\"\ntype = \"tcp\"\nprot = 22\n[[sites.d.checks]]\nname = \"c\"\ntype = \"tcp\"\nprot = 23\n",
			[]string{"14: sites.d.checks[1].prot: unknown key", "18: sites.d.checks[2].prot: unknown key"}},
		{"dns needs query", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"dns\"\nqtype = \"XYZ\"\n",
			[]string{"7: sites.d.checks[0].query: required", "10: sites.d.checks[0].qtype: unsupported query type \"XYZ\""}},
		{"exec needs command", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"exec\"\n",
			[]string{"7: sites.d.checks[0].command: required"}},
		{"bad status", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"http\"\nstatus = [200, 999]\n",
			[]string{"10: sites.d.checks[0].status: status[1] = 999"}},
		{"tcp address without port", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"db.example.net\"\n",
			[]string{"10: sites.d.checks[0].address: \"db.example.net\" has no port"}},
		{"sync op", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[sites.d.sync]\ntype = \"http\"\nurl = \"https://x.example/\"\njson_path = \"a.b\"\nop = \"=<\"\nvalue = 0\n",
			[]string{"11:", "bad op \"=<\""}},
		{"sync json path", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[sites.d.sync]\ntype = \"http\"\nurl = \"https://x.example/\"\njson_path = \"a..b\"\nop = \"<=\"\nvalue = 0\n",
			[]string{"10:", "bad json path \"a..b\""}},
		{"sync string with <", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[sites.d.sync]\ntype = \"http\"\nurl = \"https://x.example/\"\njson_path = \"state\"\nop = \"<\"\nvalue = \"healthy\"\n",
			[]string{"11: sites.d.sync.op: < needs a number value"}},
		{"sync needs url", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[sites.d.sync]\ntype = \"https\"\njson_path = \"state\"\nop = \"==\"\nvalue = \"healthy\"\n",
			[]string{"7: sites.d.sync.url: missing"}},
		{"sync of type tcp", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[sites.d.sync]\ntype = \"tcp\"\n",
			[]string{"8: sites.d.sync.type: a sync check is of type http, https or exec"}},
		{"json outside sync", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"http\"\njson_path = \"x\"\nop = \"==\"\nvalue = 1\n",
			[]string{"7: sites.d.checks[0]: json_path, op and value belong to a site's sync check"}},
		{"missing ca file", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"a\"\ntype = \"https\"\nca_file = \"testdata/nope.pem\"\n",
			[]string{"10: sites.d.checks[0].ca_file:", "no such file"}},
		{"bad check name", "[sites.d]\nendpoints = [\"192.0.2.1\"]\n[[sites.d.checks]]\nname = \"Web Mail\"\ntype = \"https\"\n",
			[]string{"8: sites.d.checks[0].name: \"Web Mail\""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.src), "f.toml")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if w[0] >= '0' && w[0] <= '9' {
					w = "f.toml:" + w // a line number: positioned
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestParseJSONPath(t *testing.T) {
	cases := []struct {
		in   string
		want []PathStep // nil: an error
	}{
		{"copy_queue_length", []PathStep{{Key: "copy_queue_length"}}},
		{"$.a.b", []PathStep{{Key: "a"}, {Key: "b"}}},
		{"dbs[2].lag", []PathStep{{Key: "dbs"}, {Index: 2, IsIndex: true}, {Key: "lag"}}},
		{`status["db.main"].state`, []PathStep{{Key: "status"}, {Key: "db.main"}, {Key: "state"}}},
		{"[0][1]", []PathStep{{Index: 0, IsIndex: true}, {Index: 1, IsIndex: true}}},
		{"", nil}, {"a..b", nil}, {"a.", nil}, {"a[x]", nil}, {"a[-1]", nil}, {"a[1", nil},
		{"a b", nil}, {"a[0]b", nil}, {`a["x`, nil},
	}
	for _, tc := range cases {
		p, err := ParseJSONPath(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseJSONPath(%q) = %+v, want an error", tc.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseJSONPath(%q): %v", tc.in, err)
			continue
		}
		if len(p.Steps) != len(tc.want) {
			t.Errorf("ParseJSONPath(%q) = %+v, want %+v", tc.in, p.Steps, tc.want)
			continue
		}
		for i := range p.Steps {
			if p.Steps[i] != tc.want[i] {
				t.Errorf("ParseJSONPath(%q) = %+v, want %+v", tc.in, p.Steps, tc.want)
				break
			}
		}
	}
}

func TestSplitProbe(t *testing.T) {
	cases := []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"127.0.0.1", "127.0.0.1", 0, true},
		{"127.0.0.1:8443", "127.0.0.1", 8443, true},
		{"::1", "::1", 0, true},
		{"[::1]:25", "::1", 25, true},
		{"mgmt.example.net", "mgmt.example.net", 0, true},
		{"mgmt.example.net:2525", "mgmt.example.net", 2525, true},
		{"127.0.0.1:0", "", 0, false},
		{"127.0.0.1:x", "", 0, false},
		{"bad host", "", 0, false},
		{"", "", 0, false},
	}
	for _, tc := range cases {
		h, p, err := splitProbe(tc.in)
		if (err == nil) != tc.ok || h != tc.host || p != tc.port {
			t.Errorf("splitProbe(%q) = %q, %d, %v", tc.in, h, p, err)
		}
	}
}
