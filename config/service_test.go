package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestServicesExample(t *testing.T) {
	c, err := Load("testdata/services.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	abs, _ := filepath.Abs("../testdata/geoip/GeoIP2-City-Test.mmdb")
	if got, _ := filepath.Abs(c.Geo.Database); got != abs || !strings.HasSuffix(c.Geo.ASNDatabase, "testdata/geoip/GeoLite2-ASN-Test.mmdb") {
		t.Errorf("geo = %+v", c.Geo)
	}
	if co := c.Sites["dallas"].Coordinates; co == nil || co.Lat != 32.78 || co.Lon != -96.80 {
		t.Errorf("dallas coordinates = %+v", co)
	}
	cas := c.Services["cas"]
	if cas.Name != "cas" || !slices.Equal(cas.Names, []FQDN{"cas.example.com.", "autodiscover.example.com.", "owa.example.com."}) {
		t.Errorf("cas names = %q", cas.Names)
	}
	if cas.Failover != Manual || cas.Failback != Manual || cas.TTL.Duration != time.Minute ||
		cas.DownFor.Duration != 0 || cas.StableFor.Duration != 5*time.Minute || cas.MinInterval.Duration != DefaultMinInterval {
		t.Errorf("cas = %+v (an explicit 0s down_for must stay 0)", cas)
	}
	www := c.Services["www"]
	if www.Failover != Auto || www.Failback != Auto || www.TTL.Duration != DefaultTTL || www.DownFor.Duration != DefaultDownFor ||
		www.StableFor.Duration != DefaultStableFor {
		t.Errorf("www defaults = %+v", www)
	}
	if len(www.Routes) != 3 {
		t.Fatalf("routes = %+v", www.Routes)
	}
	tx, eu, near := www.Routes[0], www.Routes[1], www.Routes[2]
	if tx.Name != "texas" || !slices.Equal(tx.Subdivisions, []Subdivision{"US-TX"}) || tx.Subdivisions[0].Country() != "US" || tx.Subdivisions[0].Code() != "TX" {
		t.Errorf("texas = %+v", tx)
	}
	if !slices.Equal(eu.Continents, []Continent{"EU"}) || !slices.Equal(eu.Countries, []Country{"GB", "NO"}) ||
		!slices.Equal(eu.ASNs, []uint32{64500}) || len(eu.Prefixes) != 2 || eu.Prefixes[1].String() != "2001:db8::/32" ||
		!slices.Equal(eu.Sites, []string{"london", "dallas"}) || eu.Nearest || !eu.Matchers() || !eu.Geographic() {
		t.Errorf("eu = %+v", eu)
	}
	if !near.Nearest || near.Matchers() || !near.Geographic() || !slices.Equal(near.Sites, []string{"dallas", "london"}) {
		t.Errorf("near = %+v (sites must default to the service's)", near)
	}
	h := c.HTTP
	if h.StatusRate != 2.5 || h.StatusBurst != 5 || h.AdminRate != 0 || h.AdminBurst != DefaultAdminBurst {
		t.Errorf("http limits = %+v", h)
	}
	if len(h.Tokens) != 2 || h.Tokens[0].Name != "alice" || h.Tokens[0].Role != RoleOperator || !h.Tokens[0].SHA256.Matches("hello") ||
		h.Tokens[0].SHA256.Matches("world") || h.Tokens[1].Role != RoleRead || !h.Tokens[1].SHA256.Matches("world") {
		t.Errorf("tokens = %+v", h.Tokens)
	}
}

func TestServiceErrorsArePositioned(t *testing.T) {
	const geo = "[geo]\ndatabase = \"../testdata/geoip/GeoIP2-City-Test.mmdb\"\n" // lines 5-6
	sites := "[sites.dallas]\nendpoints = [\"192.0.2.1\"]\ncoordinates = [32.78, -96.80]\n[sites.london]\nendpoints = [\"192.0.2.2\"]\n"
	// With geo and sites, [services.x] is line 12.
	svc := geo + sites + "[services.x]\nnames = [\"x.example.com\"]\nsites = [\"dallas\", \"london\"]\n"
	cases := []struct {
		name, src string
		want      []string
	}{
		{"unknown site", svc + "[services.y]\nnames = [\"y.example.com\"]\nsites = [\"dallas\", \"paris\"]\n",
			[]string{"17: services.y.sites[1]: unknown site \"paris\" (known: dallas london)"}},
		{"duplicate site", strings.Replace(svc, "\"london\"]", "\"london\", \"dallas\"]", 1),
			[]string{"14: services.x.sites[2]: site \"dallas\" is listed twice"}},
		{"no sites no names", sites + "[services.x]\nttl = \"30s\"\n",
			[]string{"10: services.x.names: missing", "10: services.x.sites: missing"}},
		{"name in two services", svc + "[services.y]\nnames = [\"a.example.com\", \"X.example.com.\"]\nsites = [\"dallas\"]\n",
			[]string{"16: services.y.names[1]: x.example.com. is also at services.x.names[0]"}},
		{"bad name", svc + "[services.y]\nnames = [\"a.example.com\", \"-bad.example.com\"]\nsites = [\"dallas\"]\n",
			[]string{"16:", "bad name \"-bad.example.com\""}},
		{"single-label name", svc + "[services.y]\nnames = [\"localhost\"]\nsites = [\"dallas\"]\n",
			[]string{"16:", "bad name \"localhost\""}},
		{"bad service name", svc + "[services.Web]\nnames = [\"y.example.com\"]\nsites = [\"dallas\"]\n",
			[]string{"15: services.Web: service name \"Web\""}},
		{"bad mode", svc + "failover = \"automatic\"\n",
			[]string{"15:", "bad mode \"automatic\": want auto or manual"}},
		{"ttl", svc + "ttl = \"1.5s\"\n[services.y]\nnames = [\"y.example.com\"]\nsites = [\"dallas\"]\nttl = \"2h\"\n",
			[]string{"15: services.x.ttl: 1.5s is not a whole number of seconds", "19: services.y.ttl: 2h0m0s is out of range"}},
		{"long hold-down", svc + "stable_for = \"48h\"\n",
			[]string{"15: services.x.stable_for: 48h0m0s is more than a day"}},
		{"unknown service key", svc + "fail_over = \"auto\"\n",
			[]string{"15: services.x.fail_over: unknown key"}},
		{"route matches nothing", svc + "[[services.x.routes]]\nname = \"eu\"\nsites = [\"london\"]\n",
			[]string{"15: services.x.routes[0]: matches nothing"}},
		{"route without name or sites", svc + "[[services.x.routes]]\ncontinents = [\"EU\"]\n",
			[]string{"15: services.x.routes[0].name: missing", "15: services.x.routes[0].sites: missing"}},
		{"duplicate route", svc + "[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\"]\nsites = [\"london\"]\n[[services.x.routes]]\nname = \"eu\"\ncountries = [\"FR\"]\nsites = [\"london\"]\n",
			[]string{"20: services.x.routes[1].name: route \"eu\" is defined twice (also at routes[0])"}},
		{"route named default", svc + "[[services.x.routes]]\nname = \"default\"\nprefixes = [\"192.0.2.0/24\"]\nsites = [\"london\"]\n",
			[]string{"16: services.x.routes[0].name: \"default\" is the service's default route"}},
		{"route name with slash", svc + "[[services.x.routes]]\nname = \"eu/1\"\nprefixes = [\"192.0.2.0/24\"]\nsites = [\"london\"]\n",
			[]string{"16: services.x.routes[0].name: \"eu/1\": use lower-case letters"}},
		{"route unknown site", svc + "[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\"]\nsites = [\"london\", \"paris\"]\n",
			[]string{"18: services.x.routes[0].sites[1]: unknown site \"paris\""}},
		{"geo route without geo", sites + "[services.x]\nnames = [\"x.example.com\"]\nsites = [\"dallas\"]\n[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\"]\nsites = [\"london\"]\n[[services.x.routes]]\nname = \"lan\"\nprefixes = [\"10.0.0.0/8\"]\nsites = [\"london\"]\n",
			[]string{"13: services.x.routes[0]: a geographic route needs [geo] database"}},
		{"asns without asn database", svc + "[[services.x.routes]]\nname = \"isp\"\nasns = [64500]\nsites = [\"london\"]\n",
			[]string{"17: services.x.routes[0].asns: needs [geo] asn_database"}},
		{"asn zero", svc + "[[services.x.routes]]\nname = \"isp\"\nprefixes = [\"10.0.0.0/8\"]\nasns = [0]\nsites = [\"london\"]\n",
			[]string{"18: services.x.routes[0].asns: asns[0] = 0"}},
		{"asn negative", svc + "[[services.x.routes]]\nname = \"isp\"\nasns = [-1]\nsites = [\"london\"]\n",
			[]string{"17:"}},
		{"nearest without coordinates", svc + "[[services.x.routes]]\nname = \"near\"\nnearest = true\n",
			[]string{"15: services.x.routes[0].sites[1]: site \"london\" has no coordinates"}},
		{"route after a catch-all", strings.Replace(svc, "[sites.london]\n", "[sites.london]\ncoordinates = [51.5, 0]\n", 1) + "[[services.x.routes]]\nname = \"near\"\nnearest = true\n[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\"]\nsites = [\"london\"]\n",
			nil}, // a warning only: see TestServiceWarnings
		{"bad continent", svc + "[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\", \"EUR\"]\nsites = [\"london\"]\n",
			[]string{"17:", "unknown continent \"EUR\""}},
		{"uk", svc + "[[services.x.routes]]\nname = \"uk\"\ncountries = [\"UK\"]\nsites = [\"london\"]\n",
			[]string{"17:", "unknown country \"UK\"", "(the United Kingdom is GB)"}},
		{"bad subdivision", svc + "[[services.x.routes]]\nname = \"tx\"\nsubdivisions = [\"TX\"]\nsites = [\"london\"]\n",
			[]string{"17:", "bad subdivision \"TX\""}},
		{"prefix with host bits", svc + "[[services.x.routes]]\nname = \"lan\"\nprefixes = [\"10.1.2.3/8\"]\nsites = [\"london\"]\n",
			[]string{"17:", "host bits set; did you mean 10.0.0.0/8?"}},
		{"unknown route key", svc + "[[services.x.routes]]\nname = \"eu\"\ncontinent = [\"EU\"]\nsites = [\"london\"]\n",
			[]string{"17: services.x.routes[0].continent: unknown key"}},
		{"coordinates out of range", "[sites.d]\nendpoints = [\"192.0.2.1\"]\ncoordinates = [95, 0]\n",
			[]string{"7:", "latitude 95 is out of range"}},
		{"coordinates shape", "[sites.d]\nendpoints = [\"192.0.2.1\"]\ncoordinates = [1, 2, 3]\n",
			[]string{"7:", "coordinates must be [latitude, longitude]"}},
		{"geo database missing", "[geo]\ndatabase = \"nope.mmdb\"\nasn_database = \"../testdata/geoip/LICENSE-MIT\"\n",
			[]string{"6: geo.database: open nope.mmdb: no such file", "7: geo.asn_database: ../testdata/geoip/LICENSE-MIT is not a MaxMind DB"}},
		{"geo databases swapped", "[geo]\ndatabase = \"../testdata/geoip/GeoLite2-ASN-Test.mmdb\"\nasn_database = \"../testdata/geoip/GeoIP2-City-Test.mmdb\"\n",
			[]string{"6: geo.database:", "is an ASN database (GeoLite2-ASN)", "7: geo.asn_database:", "is a GeoIP2-City database, not an ASN database"}},
		{"subdivisions with a country database", strings.Replace(svc, "GeoIP2-City-Test", "GeoIP2-Country-Test", 1) + "[[services.x.routes]]\nname = \"tx\"\nsubdivisions = [\"US-TX\"]\nsites = [\"london\"]\n",
			[]string{"15: services.x.routes[0]: subdivisions and nearest need a city database, and [geo] database is a GeoIP2-Country database"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.src), "f.toml")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			checkErr(t, err, tc.want)
		})
	}
}

func TestServiceWarnings(t *testing.T) {
	src := base + "[sites.dallas]\nendpoints = [\"192.0.2.1\"]\ncoordinates = [32.78, -96.80]\n" +
		"[geo]\ndatabase = \"../testdata/geoip/GeoIP2-City-Test.mmdb\"\n" +
		"[services.x]\nnames = [\"x.example.com\"]\nsites = [\"dallas\"]\n" +
		"[[services.x.routes]]\nname = \"near\"\nnearest = true\n" +
		"[[services.x.routes]]\nname = \"eu\"\ncontinents = [\"EU\"]\nsites = [\"dallas\"]\n"
	c, err := Parse([]byte(src), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := "f.toml:16: services.x.routes[1]: warning: comes after route \"near\", which matches every located client"
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], want) {
		t.Errorf("warnings = %q, want %q", c.Warnings, want)
	}
}

func TestTokenErrorsArePositioned(t *testing.T) {
	const hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	tok := func(name, hash, role string) string {
		return "[[http.tokens]]\nname = \"" + name + "\"\nsha256 = \"" + hash + "\"\nrole = \"" + role + "\"\n"
	}
	cases := []struct {
		name, src string
		want      []string
	}{
		{"short hash", tok("alice", "abc", "read"), []string{"7:", "bad sha256: want 64 hex digits", "got 3 characters"}},
		{"not hex", tok("alice", strings.Repeat("g", 64), "read"), []string{"7:", "bad sha256: not hexadecimal"}},
		{"bad role", tok("alice", hello, "admin"), []string{"8:", "bad role \"admin\": want read or operator"}},
		{"missing fields", "[[http.tokens]]\nname = \"alice\"\n", []string{"5: http.tokens[0].sha256: missing", "5: http.tokens[0].role: missing"}},
		{"no name", "[[http.tokens]]\nsha256 = \"" + hello + "\"\nrole = \"read\"\n", []string{"5: http.tokens[0].name: missing"}},
		{"bad name", tok("alice smith", hello, "read"), []string{"6: http.tokens[0].name: \"alice smith\" is not a plain name"}},
		{"duplicates", tok("alice", hello, "read") + tok("alice", strings.ToUpper(hello), "operator"),
			[]string{"10: http.tokens[1].name: token \"alice\" is defined twice", "11: http.tokens[1].sha256: the same token as http.tokens[0] (alice)"}},
		{"unknown token key", tok("alice", hello, "read") + "scope = \"all\"\n", []string{"9: http.tokens[0].scope: unknown key"}},
		{"rates", "[http]\nstatus_rate = -1\nadmin_rate = 1\nadmin_burst = 0\n",
			[]string{"6: http.status_rate: -1 is out of range", "8: http.admin_burst: 0 is out of range 1..1000000"}},
		{"cors is not a knob", "[http]\ncors = \"example.com\"\n", []string{"6: http.cors: unknown key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.src), "f.toml")
			checkErr(t, err, tc.want)
		})
	}
}

func TestArrayElementPositions(t *testing.T) {
	src := `[cluster]
nodes = [
  # the first
  { id = "ns1", raft = "a, b" },

  { id = "ns2", raft = ["x", "y"] }, { id = "ns3" },
  [1, 2], 'single ] quote',
  "last", # comment [
]
after = 1
list = ["a", "b"]
`
	p := scanPositions([]byte(src))
	want := map[string]int{
		"cluster.nodes": 2, "cluster.nodes[0]": 4, "cluster.nodes[1]": 6, "cluster.nodes[2]": 6,
		"cluster.nodes[3]": 7, "cluster.nodes[4]": 7, "cluster.nodes[5]": 8, "cluster.nodes[6]": 2,
		"cluster.nodes[0].raft": 4, "cluster.after": 10, "cluster.list[1]": 11,
	}
	for k, w := range want {
		if got := p.line(k); got != w {
			t.Errorf("line(%q) = %d, want %d", k, got, w)
		}
	}
}
