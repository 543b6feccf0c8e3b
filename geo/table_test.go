package geo

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// testAddrs: every network of the test database with its neighbours, and
// random IPv4 and IPv6 addresses.
func testAddrs(l *Locator) []netip.Addr {
	var out []netip.Addr
	for p := range l.Networks() {
		a := p.Addr()
		out = append(out, a, a.Prev(), a.Next())
		if last, ok := lastAddr(p); ok {
			out = append(out, last, last.Next())
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		out = append(out, netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}))
		var b [16]byte
		b[0], b[1] = 0x20, byte(r.IntN(256))
		for i := 2; i < 16; i++ {
			b[i] = byte(r.IntN(256))
		}
		out = append(out, netip.AddrFrom16(b))
	}
	return out
}

func lastAddr(p netip.Prefix) (netip.Addr, bool) {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFromSlice(b)
}

// A table answers exactly Router.Route's route, with a scope at least as
// wide, and every address of that scope's block gets the same route.
func TestTableMatchesRouter(t *testing.T) {
	l := openTest(t)
	routers := map[string][]Rule{
		"continent": {{Name: "eu", Continents: []string{"EU"}}},
		"layers": {
			{Name: "eu", Continents: []string{"EU"}},
			{Name: "se", Countries: []string{"SE"}},
			{Name: "wa", Subdivisions: []string{"US-WA"}},
			{Name: "lab", Prefixes: []netip.Prefix{netip.MustParsePrefix("89.160.20.112/29"), netip.MustParsePrefix("2a02:ff80::/32")}},
		},
		"nearest":           {{Name: "near", Nearest: []Site{london, dallas, tokyo}}},
		"nearest by prefix": {{Name: "near", Prefixes: []netip.Prefix{netip.MustParsePrefix("81.2.69.0/24")}, Nearest: []Site{london, dallas}}},
	}
	addrs := testAddrs(l)
	r := rand.New(rand.NewPCG(3, 4))
	for name, rules := range routers {
		t.Run(name, func(t *testing.T) {
			rt, err := NewRouter("default", rules)
			if err != nil {
				t.Fatal(err)
			}
			tab := rt.Compile(l)
			if tab == nil {
				t.Fatal("no table")
			}
			covered := 0
			for _, a := range addrs {
				loc := l.Lookup(a)
				want, wantScope := rt.Route(&loc)
				got, scope, ok := tab.Route(a)
				if !ok {
					continue
				}
				covered++
				if got != want || scope > wantScope {
					t.Fatalf("%v: table %s /%d, router %s /%d", a, rt.Routes()[got], scope, rt.Routes()[want], wantScope)
				}
				// Every address of the scope's block: the same route.
				block, _ := a.Prefix(scope)
				last, _ := lastAddr(block)
				samples := []netip.Addr{block.Addr(), last}
				for range 6 {
					b := block.Addr().AsSlice()
					for i := scope; i < len(b)*8; i++ {
						if r.IntN(2) == 1 {
							b[i/8] |= 0x80 >> (i % 8)
						}
					}
					x, _ := netip.AddrFromSlice(b)
					samples = append(samples, x)
				}
				for _, x := range samples {
					lx := l.Lookup(x)
					if rx, _ := rt.Route(&lx); rx != got {
						t.Fatalf("%v: scope /%d, but %v in it routes to %s, not %s", a, scope, x, rt.Routes()[rx], rt.Routes()[got])
					}
				}
			}
			if covered < len(addrs)*9/10 {
				t.Errorf("table covers %d of %d addresses", covered, len(addrs))
			}
		})
	}
	// Routers a table cannot stand for.
	asn, _ := NewRouter("d", []Rule{{Name: "g", ASNs: []uint32{15169}}})
	static, _ := NewRouter("d", nil)
	eu, _ := NewRouter("d", []Rule{{Name: "eu", Continents: []string{"EU"}}})
	if asn.Compile(l) != nil || static.Compile(l) != nil || eu.Compile(nil) != nil {
		t.Error("a table for an ASN router, a static router or no locator")
	}
}

func TestTableWiderScope(t *testing.T) {
	l := openTest(t)
	rt, err := NewRouter("default", []Rule{{Name: "eu", Continents: []string{"EU"}}})
	if err != nil {
		t.Fatal(err)
	}
	tab := rt.Compile(l)
	// 216.160.83.56 is in a /29 in the database; for this router all of
	// its neighbourhood is "default": the scope is much wider.
	got, scope, ok := tab.Route(netip.MustParseAddr("216.160.83.56"))
	if !ok || rt.Routes()[got] != "default" || scope >= 29 {
		t.Errorf("216.160.83.56: %s /%d %v", rt.Routes()[got], scope, ok)
	}
	got, scope, ok = tab.Route(netip.MustParseAddr("81.2.69.142"))
	if !ok || rt.Routes()[got] != "eu" || scope > 31 {
		t.Errorf("81.2.69.142: %s /%d %v", rt.Routes()[got], scope, ok)
	}
}

func BenchmarkTableRoute(b *testing.B) {
	l := openTest(b)
	rt, err := NewRouter("default", []Rule{{Name: "eu", Continents: []string{"EU"}}, {Name: "tx", Subdivisions: []string{"US-TX"}}})
	if err != nil {
		b.Fatal(err)
	}
	tab := rt.Compile(l)
	addrs := []netip.Addr{
		netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("216.160.83.56"),
		netip.MustParseAddr("89.160.20.112"), netip.MustParseAddr("2001:218::1"),
		netip.MustParseAddr("1.0.0.1"), netip.MustParseAddr("8.8.8.8"),
	}
	b.ReportAllocs()
	sink := 0
	for i := 0; b.Loop(); i++ {
		route, scope, _ := tab.Route(addrs[i%len(addrs)])
		sink += route + scope
	}
	_ = sink
}
