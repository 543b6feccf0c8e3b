package geo

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	cityDB = "../testdata/geoip/GeoIP2-City-Test.mmdb"
	asnDB  = "../testdata/geoip/GeoLite2-ASN-Test.mmdb"
)

func openTest(t testing.TB) *Locator {
	t.Helper()
	l, err := Open(cityDB, asnDB)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The known addresses of testdata/geoip/SOURCE.md.
func TestLookupKnownAddresses(t *testing.T) {
	l := openTest(t)
	p := netip.MustParsePrefix
	tests := []struct {
		addr string
		want Location
	}{
		{"81.2.69.142", Location{Continent: "EU", Country: "GB", Subdivision: "GB-ENG", Latitude: 51.5142, Longitude: -0.0931, HasCoordinates: true,
			Prefix: p("81.2.69.142/31"), ASNPrefix: p("81.0.0.0/9")}},
		{"::ffff:81.2.69.142", Location{Continent: "EU", Country: "GB", Subdivision: "GB-ENG", Latitude: 51.5142, Longitude: -0.0931, HasCoordinates: true,
			Prefix: p("81.2.69.142/31"), ASNPrefix: p("81.0.0.0/9")}},
		{"89.160.20.112", Location{Continent: "EU", Country: "SE", Subdivision: "SE-E", ASN: 29518, Latitude: 58.4167, Longitude: 15.6167, HasCoordinates: true,
			Prefix: p("89.160.20.112/28"), ASNPrefix: p("89.160.0.0/17")}},
		{"216.160.83.56", Location{Continent: "NA", Country: "US", Subdivision: "US-WA", ASN: 209, Latitude: 47.2513, Longitude: -122.3149, HasCoordinates: true,
			Prefix: p("216.160.83.56/29"), ASNPrefix: p("216.160.64.0/18")}},
		{"2001:218::1", Location{Continent: "AS", Country: "JP", Latitude: 35.68536, Longitude: 139.75309, HasCoordinates: true,
			Prefix: p("2001:218::/32"), ASNPrefix: p("2001:200::/23")}},
		{"1.0.0.1", Location{ASN: 15169, Prefix: p("1.0.0.0/8"), ASNPrefix: p("1.0.0.0/24")}},
		{"8.8.8.8", Location{Prefix: p("8.0.0.0/7"), ASNPrefix: p("8.0.0.0/7")}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			tt.want.Addr = a.Unmap()
			if got := l.Lookup(a); got != tt.want {
				t.Errorf("Lookup(%s)\n got %+v\nwant %+v", tt.addr, got, tt.want)
			}
		})
	}
	if got := (*Locator)(nil).Lookup(netip.MustParseAddr("81.2.69.142")); got.Country != "" || got.Prefix.IsValid() {
		t.Errorf("nil Locator: %+v", got)
	}
	if c, a := l.DatabaseTypes(); c != "GeoIP2-City" || a != "GeoLite2-ASN" {
		t.Errorf("DatabaseTypes = %q, %q", c, a)
	}
}

func TestOpenRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(cityDB)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mmdb")
	if err := os.WriteFile(truncated, good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.mmdb")
	if err := os.WriteFile(garbage, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, city, asn, want string
	}{
		{"missing", filepath.Join(dir, "none.mmdb"), "", "no such file"},
		{"truncated", truncated, "", "truncated.mmdb"},
		{"garbage", garbage, "", "garbage.mmdb"},
		{"asn as city", asnDB, "", `database type "GeoLite2-ASN" has no city data`},
		{"city as asn", cityDB, cityDB, `asn database ../testdata/geoip/GeoIP2-City-Test.mmdb: database type "GeoIP2-City" has no asn data`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(tt.city, tt.asn)
			if err == nil || l != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open = %v, %v; want an error containing %q", l, err, tt.want)
			}
		})
	}
	// A country database routes by continent and country too.
	l, err := Open("../testdata/geoip/GeoIP2-Country-Test.mmdb", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Lookup(netip.MustParseAddr("81.2.69.142")); got.Country != "GB" || got.Continent != "EU" || got.HasCoordinates {
		t.Errorf("country db: %+v", got)
	}
}

var (
	london = Site{"london", 51.5074, -0.1278}
	dallas = Site{"dallas", 32.78, -96.80}
	tokyo  = Site{"tokyo", 35.68, 139.69}
)

func TestRouterMostSpecificWins(t *testing.T) {
	l := openTest(t)
	r, err := NewRouter("default", []Rule{
		{Name: "eu", Continents: []string{"eu"}},
		{Name: "sweden", Countries: []string{"SE"}},
		{Name: "washington", Subdivisions: []string{"us-wa"}},
		{Name: "google", ASNs: []uint32{15169}},
		{Name: "bredband", ASNs: []uint32{29518}},
		{Name: "lab", Prefixes: []netip.Prefix{netip.MustParsePrefix("89.160.20.112/29"), netip.MustParsePrefix("2001:218::/48")}},
		{Name: "lab-wide", Prefixes: []netip.Prefix{netip.MustParsePrefix("89.161.0.0/16")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr  string
		route string
		scope int
	}{
		// 81.2.69.142/31 in the city db, 81.0.0.0/9 in the asn db: the
		// city network is the narrower.
		{"81.2.69.142", "eu", 31},
		{"2.125.160.216", "eu", 29},
		// SE matches continent EU and country SE: country wins.
		// asn beats country; the scope still excludes the /29 next door.
		{"89.160.20.120", "bredband", 29},
		{"89.160.20.113", "lab", 29}, // the /29 prefix beats everything
		{"216.160.83.56", "washington", 29},
		{"1.0.0.1", "google", 24},
		{"175.16.199.1", "default", 24},
		{"8.8.8.8", "default", 7},
		{"2001:218::1", "lab", 48},
		{"2a02:ff80::1", "eu", 29},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			loc := l.Lookup(netip.MustParseAddr(tt.addr))
			i, scope := r.Route(&loc)
			if got := r.Routes()[i]; got != tt.route || scope != tt.scope {
				t.Errorf("Route(%s) = %s /%d, want %s /%d (location %+v)", tt.addr, got, scope, tt.route, tt.scope, loc)
			}
		})
	}
}

func TestRouterPrefixRuleScope(t *testing.T) {
	// 89.160.20.120 is in 89.160.0.0/16 (lab-wide) but not in the /29:
	// the scope must exclude the /29: it shares 28 bits with 89.160.20.112.
	r, err := NewRouter("default", []Rule{
		{Name: "lab", Prefixes: []netip.Prefix{netip.MustParsePrefix("89.160.20.112/29")}},
		{Name: "wide", Prefixes: []netip.Prefix{netip.MustParsePrefix("89.160.0.0/16")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr  string
		route string
		scope int
	}{
		{"89.160.20.120", "wide", 29}, // ...0111 1000 vs ...0111 0000: differ at bit 29
		{"89.160.20.113", "lab", 29},
		{"89.161.0.1", "default", 16},
		{"10.0.0.1", "default", 2}, // 00001010 vs 01011001: the block 0.0.0.0/2 holds no rule
		{"2001:db8::1", "default", 0},
	} {
		loc := Location{Addr: netip.MustParseAddr(tt.addr)}
		i, scope := r.Route(&loc)
		if got := r.Routes()[i]; got != tt.route || scope != tt.scope {
			t.Errorf("Route(%s) = %s /%d, want %s /%d", tt.addr, got, scope, tt.route, tt.scope)
		}
	}
}

func TestRouterStatic(t *testing.T) {
	r, err := NewRouter("default", nil)
	if err != nil {
		t.Fatal(err)
	}
	loc := openTest(t).Lookup(netip.MustParseAddr("81.2.69.142"))
	if i, scope := r.Route(&loc); i != 0 || scope != 0 || !r.Static() {
		t.Errorf("static router: %d /%d", i, scope)
	}
	if i, scope := (*Router)(nil).Route(&loc); i != 0 || scope != 0 {
		t.Errorf("nil router: %d /%d", i, scope)
	}
}

// The DESIGN example: European clients to london, everyone else to dallas.
func TestRouterEuropeToLondon(t *testing.T) {
	l := openTest(t)
	r, err := NewRouter("default", []Rule{{Name: "eu", Continents: []string{"EU"}}})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"81.2.69.142": "eu", "2.125.160.216": "eu", "89.160.20.112": "eu", "2a02:ff80::1": "eu", "2.2.3.1": "eu",
		"216.160.83.56": "default", "175.16.199.1": "default", "2001:218::1": "default", "127.0.0.1": "default",
	} {
		loc := l.Lookup(netip.MustParseAddr(addr))
		if i, _ := r.Route(&loc); r.Routes()[i] != want {
			t.Errorf("%s -> %s, want %s", addr, r.Routes()[i], want)
		}
	}
}

func TestRouterNearest(t *testing.T) {
	l := openTest(t)
	sites := []Site{dallas, london, tokyo}
	r, err := NewRouter("default", []Rule{
		{Name: "near", Nearest: sites},
		{Name: "asia", Countries: []string{"PH"}, Nearest: []Site{tokyo, london}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"default", "near/dallas", "near/london", "near/tokyo", "asia/tokyo", "asia/london"}
	if !slices.Equal(r.Routes(), want) {
		t.Fatalf("Routes = %q, want %q", r.Routes(), want)
	}
	for addr, want := range map[string]string{
		"81.2.69.142":   "near/london", // London
		"89.160.20.112": "near/london", // Linköping
		"216.160.83.56": "near/dallas", // Milton, WA
		"2001:218::1":   "near/tokyo",  // Japan
		"175.16.199.1":  "near/tokyo",  // Changchun
		"202.196.224.1": "asia/tokyo",  // PH: the country rule beats the bare nearest rule
		"1.0.0.1":       "default",     // no coordinates
	} {
		loc := l.Lookup(netip.MustParseAddr(addr))
		if i, _ := r.Route(&loc); r.Routes()[i] != want {
			t.Errorf("%s -> %s, want %s", addr, r.Routes()[i], want)
		}
	}
	// Matched by a list, coordinates unknown: the rule's first site.
	loc := Location{Addr: netip.MustParseAddr("192.0.2.1"), Country: "PH"}
	if i, _ := r.Route(&loc); r.Routes()[i] != "asia/tokyo" {
		t.Errorf("PH without coordinates -> %s", r.Routes()[i])
	}
}

func TestExpandNearest(t *testing.T) {
	got := ExpandNearest("near", []Site{dallas, london, tokyo, {"losangeles", 34.05, -118.24}})
	want := []Expanded{
		{"near/dallas", "dallas", []string{"dallas", "losangeles", "london", "tokyo"}},
		{"near/london", "london", []string{"london", "dallas", "losangeles", "tokyo"}},
		{"near/tokyo", "tokyo", []string{"tokyo", "losangeles", "london", "dallas"}}, // London is nearer Tokyo than Dallas is
		{"near/losangeles", "losangeles", []string{"losangeles", "dallas", "london", "tokyo"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d routes", len(got))
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Site != want[i].Site || !slices.Equal(got[i].Sites, want[i].Sites) {
			t.Errorf("route %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Two sites at the same place: each route still starts at its own site.
	twin := ExpandNearest("n", []Site{{"a", 1, 1}, {"b", 1, 1}})
	if !slices.Equal(twin[1].Sites, []string{"b", "a"}) {
		t.Errorf("twin = %+v", twin)
	}
}

func TestDistance(t *testing.T) {
	// London–Dallas is about 7,600 km; a point to itself is 0; antipodes
	// are half the circumference.
	if d := Distance(london.Latitude, london.Longitude, dallas.Latitude, dallas.Longitude); d < 7500 || d > 7700 {
		t.Errorf("london-dallas = %v km", d)
	}
	if d := Distance(10, 20, 10, 20); d != 0 {
		t.Errorf("self = %v", d)
	}
	if d := Distance(0, 0, 0, 180); math.Abs(d-math.Pi*earthRadius) > 1e-6 {
		t.Errorf("antipodes = %v", d)
	}
}

func TestNewRouterErrors(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		def   string
		rules []Rule
		want  string
	}{
		{"empty default", "", nil, "default route: empty name"},
		{"empty rule name", "d", []Rule{{Countries: []string{"GB"}}}, "rules[0]: empty name"},
		{"matches nothing", "d", []Rule{{Name: "x"}}, `route "x": matches no client`},
		{"bad continent", "d", []Rule{{Name: "x", Continents: []string{"EUR"}}}, `route "x": continents[0]: "EUR" is not a continent code`},
		{"bad country", "d", []Rule{{Name: "x", Countries: []string{"GB", "G1"}}}, `route "x": countries[1]: "G1" is not an ISO 3166-1`},
		{"bad subdivision", "d", []Rule{{Name: "x", Subdivisions: []string{"TX"}}}, `route "x": subdivisions[0]: "TX" is not an ISO 3166-2`},
		{"asn zero", "d", []Rule{{Name: "x", ASNs: []uint32{0}}}, `route "x": asns[0]: 0 is not an AS number`},
		{"unmasked prefix", "d", []Rule{{Name: "x", Prefixes: []netip.Prefix{p("192.0.2.1/24")}}}, "prefixes[0]: 192.0.2.1/24 has host bits set: write 192.0.2.0/24"},
		{"mapped prefix", "d", []Rule{{Name: "x", Prefixes: []netip.Prefix{p("::ffff:192.0.2.0/120")}}}, "write IPv4 prefixes in IPv4 form"},
		{"duplicate country", "d", []Rule{{Name: "x", Countries: []string{"GB"}}, {Name: "y", Countries: []string{"gb"}}}, `route "y": country GB is also in route "x"`},
		{"duplicate route", "d", []Rule{{Name: "x", Countries: []string{"GB"}}, {Name: "x", Countries: []string{"FR"}}}, `route name "x" used twice`},
		{"rule named default", "d", []Rule{{Name: "d", Countries: []string{"GB"}}}, `route name "d" used twice`},
		{"bad coordinates", "d", []Rule{{Name: "n", Nearest: []Site{{"a", 91, 0}}}}, `nearest[0]: site "a" coordinates [91, 0] out of range`},
		{"nan coordinates", "d", []Rule{{Name: "n", Nearest: []Site{{"a", math.NaN(), 0}}}}, `out of range`},
		{"slash in site", "d", []Rule{{Name: "n", Nearest: []Site{{"a/b", 0, 0}}}}, `without "/"`},
		{"two bare nearest", "d", []Rule{{Name: "n", Nearest: []Site{london}}, {Name: "m", Nearest: []Site{dallas}}}, `route "m": a second nearest rule without a list can never match`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRouter(tt.def, tt.rules)
			if err == nil || r != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRouter = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkLocateAndRoute is the per-query route lookup of a service
// name: the GeoIP2 city and ASN lookups plus the match.
func BenchmarkLocateAndRoute(b *testing.B) {
	l := openTest(b)
	r, err := NewRouter("default", []Rule{
		{Name: "eu", Continents: []string{"EU"}},
		{Name: "tx", Subdivisions: []string{"US-TX"}},
		{Name: "google", ASNs: []uint32{15169}},
		{Name: "lab", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
	})
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{
		netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("216.160.83.56"),
		netip.MustParseAddr("89.160.20.112"), netip.MustParseAddr("2001:218::1"),
		netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr("8.8.8.8"),
	}
	b.ReportAllocs()
	sink := 0
	for i := 0; b.Loop(); i++ {
		loc := l.Lookup(addrs[i%len(addrs)])
		route, scope := r.Route(&loc)
		sink += route + scope
	}
	_ = sink
}

func TestLookupOnly(t *testing.T) {
	l := openTest(t)
	a := netip.MustParseAddr("89.160.20.112")
	full := l.Lookup(a)
	city := l.LookupOnly(a, true, false)
	asn := l.LookupOnly(a, false, true)
	if city.Country != "SE" || city.ASN != 0 || city.ASNPrefix.IsValid() || city.Prefix != full.Prefix {
		t.Errorf("city only: %+v", city)
	}
	if asn.ASN != 29518 || asn.Country != "" || asn.Prefix.IsValid() || asn.ASNPrefix != full.ASNPrefix {
		t.Errorf("asn only: %+v", asn)
	}
	r, err := NewRouter("d", []Rule{{Name: "a", ASNs: []uint32{1}}, {Name: "p", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	if c, as := r.Needs(); c || !as {
		t.Errorf("Needs = %v, %v", c, as)
	}
}
