package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/geo"
	"github.com/geodnsd/geodnsd/zones"
)

const serviceZone = `$ORIGIN example.org.
$TTL 300
@     SOA  ns1 hostmaster 100 7200 3600 1209600 60
@     NS   ns1
@     MX   10 cas
ns1   A    192.0.2.53
www   A    192.0.2.80
`

// newServiceStore is a store serving example.org with the service "cas"
// (cas.example.org and the apex MX target): dallas by default, london for
// European clients, located with MaxMind's test databases.
func newServiceStore(t testing.TB) *zones.Store {
	t.Helper()
	st := zones.NewStore(zones.StoreOptions{FS: fstest.MapFS{"example.org.zone": {Data: []byte(serviceZone)}}})
	if err := st.Load(); err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open("../testdata/geoip/GeoIP2-City-Test.mmdb", "../testdata/geoip/GeoLite2-ASN-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	eu, err := geo.NewRouter("default", []geo.Rule{{Name: "eu", Continents: []string{"EU"}}})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := zones.NewServices(loc, []zones.Service{{Name: "cas", Names: []string{"cas.example.org"}, TTL: 30, Router: eu}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	st.SetRouting(&zones.Routing{Version: 1, Answers: []failover.Answer{
		{Service: "cas", Route: "default", Site: "dallas", Endpoints: []failover.Endpoint{{Name: "d1", Address: "192.0.2.10"}, {Name: "d2", Address: "2001:db8::10"}}},
		{Service: "cas", Route: "eu", Site: "london", Endpoints: []failover.Endpoint{{Name: "l1", Address: "203.0.113.10"}}},
	}})
	return st
}

const (
	dallasA = "cas.example.org. 30 IN A 192.0.2.10"
	londonA = "cas.example.org. 30 IN A 203.0.113.10"
)

func ecs(prefix string) dns.EDNS0 {
	p := netip.MustParsePrefix(prefix)
	fam := uint16(1)
	if p.Addr().Is6() {
		fam = 2
	}
	return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(p.Bits()), Address: p.Addr().AsSlice()}
}

// rawECS is an ECS option with exactly these bytes (miekg/dns would fix
// some malformations when packing).
func rawECS(b ...byte) dns.EDNS0 { return &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: b} }

// replyECS returns the reply's ECS option as "addr/source/scope", "" if none.
func replyECS(t *testing.T, m *dns.Msg) string {
	t.Helper()
	o := m.IsEdns0()
	if o == nil {
		return ""
	}
	var out []string
	for _, opt := range o.Option {
		if e, ok := opt.(*dns.EDNS0_SUBNET); ok {
			out = append(out, fmt.Sprintf("%v/%d/%d", e.Address, e.SourceNetmask, e.SourceScope))
		}
	}
	return strings.Join(out, " ")
}

type serviceCase struct {
	name   string
	from   string // resolver address
	qname  string
	qtype  uint16
	opts   []dns.EDNS0
	rcode  int
	answer []string
	extra  []string
	ecs    string
}

func serviceCases() []serviceCase {
	return []serviceCase{
		{name: "us resolver, no ecs: dallas", from: "216.160.83.56", answer: []string{dallasA}},
		{name: "eu resolver, no ecs: london", from: "81.2.69.142", answer: []string{londonA}},
		{name: "eu /24 over a us resolver: london, scope 24", from: "216.160.83.56", opts: []dns.EDNS0{ecs("2.2.3.0/24")},
			answer: []string{londonA}, ecs: "2.2.3.0/24/24"},
		// The scope is the widest prefix around the subnet that routes
		// alike (as gdnsd merges networks), at most the source prefix.
		{name: "scope is the database network within the source", from: "216.160.83.56", opts: []dns.EDNS0{ecs("2.125.160.216/32")},
			answer: []string{londonA}, ecs: "2.125.160.216/32/29"},
		{name: "scope capped by the source prefix", from: "81.2.69.142", opts: []dns.EDNS0{ecs("81.2.69.0/24")},
			answer: []string{dallasA}, ecs: "81.2.69.0/24/24"},
		{name: "ipv6 subnet", from: "216.160.83.56", opts: []dns.EDNS0{ecs("2a02:ff80::/48")},
			answer: []string{londonA}, ecs: "2a02:ff80::/48/29"},
		{name: "private subnet ignored: the resolver decides, scope 0", from: "81.2.69.142", opts: []dns.EDNS0{ecs("10.1.0.0/16")},
			answer: []string{londonA}, ecs: "10.1.0.0/16/0"},
		{name: "loopback subnet ignored", from: "216.160.83.56", opts: []dns.EDNS0{ecs("127.0.0.0/8")},
			answer: []string{dallasA}, ecs: "127.0.0.0/8/0"},
		{name: "ipv4-mapped ipv6 subnet ignored", from: "216.160.83.56", opts: []dns.EDNS0{rawECS(0, 2, 120, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 2, 2, 3)},
			answer: []string{dallasA}, ecs: "2.2.3.0/120/0"}, // miekg/dns prints the mapped address in IPv4 form,
		{name: "source prefix 0: not located, scope 0", from: "81.2.69.142", opts: []dns.EDNS0{rawECS(0, 1, 0, 0)},
			answer: []string{londonA}, ecs: "0.0.0.0/0/0"},
		{name: "aaaa at dallas", from: "216.160.83.56", qtype: dns.TypeAAAA, opts: []dns.EDNS0{ecs("216.160.83.0/24")},
			answer: []string{"cas.example.org. 30 IN AAAA 2001:db8::10"}, ecs: "216.160.83.0/24/1"}, // all of 0/1 routes to dallas
		{name: "mx target additional by route", from: "216.160.83.56", qname: "example.org.", qtype: dns.TypeMX, opts: []dns.EDNS0{ecs("2.2.3.0/24")},
			answer: []string{"example.org. 300 IN MX 10 cas.example.org."}, extra: []string{londonA}, ecs: "2.2.3.0/24/24"},
		{name: "static name: no ecs echoed", from: "216.160.83.56", qname: "www.example.org.", opts: []dns.EDNS0{ecs("2.2.3.0/24")},
			answer: []string{"www.example.org. 300 IN A 192.0.2.80"}},

		// Malformed ECS: FORMERR (RFC 7871 §7.1.1).
		{name: "address bits beyond the source prefix", opts: []dns.EDNS0{rawECS(0, 1, 24, 0, 2, 2, 3, 1)}, rcode: dns.RcodeFormatError},
		{name: "too many address octets", opts: []dns.EDNS0{rawECS(0, 1, 16, 0, 2, 2, 3)}, rcode: dns.RcodeFormatError},
		{name: "too few address octets", opts: []dns.EDNS0{rawECS(0, 1, 24, 0, 2, 2)}, rcode: dns.RcodeFormatError},
		{name: "unknown family", opts: []dns.EDNS0{rawECS(0, 3, 8, 0, 2)}, rcode: dns.RcodeFormatError},
		{name: "source beyond the family", opts: []dns.EDNS0{rawECS(0, 1, 33, 0, 1, 2, 3, 4, 5)}, rcode: dns.RcodeFormatError},
		{name: "scope set in a query", opts: []dns.EDNS0{rawECS(0, 1, 24, 24, 2, 2, 3)}, rcode: dns.RcodeFormatError},
		{name: "option too short", opts: []dns.EDNS0{rawECS(0, 1, 0)}, rcode: dns.RcodeFormatError},
		{name: "two ecs options", opts: []dns.EDNS0{ecs("2.2.3.0/24"), ecs("2.2.3.0/24")}, rcode: dns.RcodeFormatError},
	}
}

func (c serviceCase) query(id uint16) *dns.Msg {
	if c.qname == "" {
		c.qname = "cas.example.org."
	}
	if c.qtype == 0 {
		c.qtype = dns.TypeA
	}
	return q{id: id, name: c.qname, qtype: c.qtype, edns: len(c.opts) > 0, opts: c.opts}.msg()
}

func (c serviceCase) check(t *testing.T, raw []byte, id uint16) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		t.Fatalf("unpack reply: %v", err)
	}
	if m.Id != id || m.Rcode != c.rcode {
		t.Fatalf("id %d rcode %s, want %d %s", m.Id, dns.RcodeToString[m.Rcode], id, dns.RcodeToString[c.rcode])
	}
	if c.rcode != dns.RcodeSuccess {
		return
	}
	if !m.Authoritative || len(m.Ns) != 0 {
		t.Errorf("aa %v, ns %v", m.Authoritative, m.Ns)
	}
	if got, want := rrStrings(m.Answer), rrStrings(parseRRs(t, c.answer)); !slices.Equal(got, want) {
		t.Errorf("answer %q, want %q", got, want)
	}
	if got, want := rrStrings(m.Extra), rrStrings(parseRRs(t, c.extra)); !slices.Equal(got, want) {
		t.Errorf("extra %q, want %q", got, want)
	}
	if got := replyECS(t, m); got != c.ecs {
		t.Errorf("ecs %q, want %q", got, c.ecs)
	}
}

func parseRRs(t *testing.T, ss []string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, s := range ss {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

// TestServiceRespond runs every case twice on one worker: built, then
// from the cache, which must patch the ID and the ECS scope.
func TestServiceRespond(t *testing.T) {
	s := newTestServer(t, Options{Source: newServiceStore(t)})
	w := s.newUDPWorker()
	for _, c := range serviceCases() {
		t.Run(c.name, func(t *testing.T) {
			for id := uint16(1); id <= 2; id++ {
				req, err := c.query(id).Pack()
				if err != nil {
					t.Fatal(err)
				}
				var from netip.Addr
				if c.from != "" {
					from = netip.MustParseAddr(c.from)
				}
				c.check(t, w.respondFrom(nil, req, from), id)
			}
		})
	}
	// One cache entry serves clients of one route whatever their scope:
	// the european /24 then a /32 inside a /29 network.
	for i, c := range []serviceCase{serviceCases()[2], serviceCases()[3], serviceCases()[2]} {
		req, _ := c.query(uint16(10 + i)).Pack()
		c.check(t, w.respondFrom(nil, req, netip.MustParseAddr(c.from)), uint16(10+i))
	}
}

// TestServiceOverUDPAndTCP asks a real server on loopback: the resolver
// is 127.0.0.1 (no location: the default route) unless ECS says otherwise.
func TestServiceOverUDPAndTCP(t *testing.T) {
	s := startServer(t, Options{Source: newServiceStore(t), Listen: loopbacks[:1]}, false)
	cases := []serviceCase{
		{name: "loopback resolver: default route", answer: []string{dallasA}},
		{name: "eu subnet", opts: []dns.EDNS0{ecs("2.2.3.0/24")}, answer: []string{londonA}, ecs: "2.2.3.0/24/24"},
		{name: "eu ipv6 subnet", opts: []dns.EDNS0{ecs("2a02:ff80::/40")}, answer: []string{londonA}, ecs: "2a02:ff80::/40/29"},
		{name: "us subnet", opts: []dns.EDNS0{ecs("216.160.83.56/32")}, answer: []string{dallasA}, ecs: "216.160.83.56/32/1"},
		{name: "private subnet ignored", opts: []dns.EDNS0{ecs("192.168.0.0/16")}, answer: []string{dallasA}, ecs: "192.168.0.0/16/0"},
		{name: "unspecified subnet ignored", opts: []dns.EDNS0{ecs("0.0.0.0/32")}, answer: []string{dallasA}, ecs: "0.0.0.0/32/0"},
		{name: "malformed", opts: []dns.EDNS0{rawECS(0, 1, 24, 0, 2, 2, 3, 1)}, rcode: dns.RcodeFormatError},
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := s.UDPAddrs()[0]
		if network == "tcp" {
			addr = s.TCPAddrs()[0]
		}
		for i, c := range cases {
			t.Run(network+"/"+c.name, func(t *testing.T) {
				for round := range 2 { // built, then cached (UDP)
					id := uint16(100 + 10*i + round)
					req, err := c.query(id).Pack()
					if err != nil {
						t.Fatal(err)
					}
					c.check(t, exchangeRaw(t, network, addr, req), id)
				}
			})
		}
	}
}

func TestServiceRoutingSwap(t *testing.T) {
	st := newServiceStore(t)
	s := newTestServer(t, Options{Source: st})
	w := s.newUDPWorker()
	c := serviceCases()[2]
	req, _ := c.query(1).Pack()
	from := netip.MustParseAddr(c.from)
	c.check(t, w.respondFrom(nil, req, from), 1)
	// london fails over to dallas: the next query sees it at once.
	st.SetRouting(&zones.Routing{Version: 2, Answers: []failover.Answer{
		{Service: "cas", Route: "default", Site: "dallas", Endpoints: []failover.Endpoint{{Name: "d1", Address: "192.0.2.10"}}},
		{Service: "cas", Route: "eu", Site: "dallas", Endpoints: []failover.Endpoint{{Name: "d1", Address: "192.0.2.10"}}},
	}})
	c.answer = []string{dallasA}
	c.check(t, w.respondFrom(nil, req, from), 1)
	soa := zones.Question{Name: "example.org.", Type: dns.TypeSOA, Class: dns.ClassINET}
	if got := st.Snapshot().Answer(soa).Answer[0].(*dns.SOA).Serial; got != 102 {
		t.Errorf("serial = %d, want 102", got)
	}
}

// The cached service answer allocates nothing: parse with ECS, locate,
// route, cache hit, patch ID, case and scope.
func TestServiceCachedNoAlloc(t *testing.T) {
	s := newTestServer(t, Options{Source: newServiceStore(t)})
	w := s.newUDPWorker()
	req, _ := serviceCases()[2].query(1).Pack()
	from := netip.MustParseAddr("216.160.83.56")
	out := make([]byte, 0, 1232)
	w.respondFrom(out, req, from)
	if n := testing.AllocsPerRun(100, func() { w.respondFrom(out, req, from) }); n != 0 {
		t.Errorf("%v allocations per cached service answer", n)
	}
}

// The location memo answers exactly what the databases answer, for
// addresses in and around every network of the test database.
func TestLocateMemo(t *testing.T) {
	st := newServiceStore(t)
	snap := st.Snapshot()
	w := newTestServer(t, Options{Source: st}).newUDPWorker()
	loc, err := geo.Open("../testdata/geoip/GeoIP2-City-Test.mmdb", "")
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for p := range loc.Networks() {
		a := p.Addr()
		addrs = append(addrs, a, a.Prev(), a.Next())
		if p.Addr().Is4() {
			b := a.As4()
			b[3] ^= 0xff
			addrs = append(addrs, netip.AddrFrom4(b))
		}
	}
	for round := range 2 { // the second round answers from the memo
		for _, a := range addrs {
			if !a.IsValid() {
				continue
			}
			got, want := w.locate(snap, a), snap.Locate(a)
			if got != want {
				t.Fatalf("round %d: locate(%v) = %+v, want %+v", round, a, got, want)
			}
		}
	}
	if len(w.locs) == 0 {
		t.Error("nothing memoised")
	}
}

// A router that reads the ASN database has no table: the location path
// (GeoIP2 lookups, memo, match) decides, with the database's scope.
func TestServiceASNRoute(t *testing.T) {
	st := zones.NewStore(zones.StoreOptions{FS: fstest.MapFS{"example.org.zone": {Data: []byte(serviceZone)}}})
	if err := st.Load(); err != nil {
		t.Fatal(err)
	}
	loc, err := geo.Open("../testdata/geoip/GeoIP2-City-Test.mmdb", "../testdata/geoip/GeoLite2-ASN-Test.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	r, err := geo.NewRouter("default", []geo.Rule{{Name: "bredband", ASNs: []uint32{29518}}})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := zones.NewServices(loc, []zones.Service{{Name: "cas", Names: []string{"cas.example.org"}, TTL: 30, Router: r}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetServices(svcs); err != nil {
		t.Fatal(err)
	}
	st.SetRouting(&zones.Routing{Version: 1, Answers: []failover.Answer{
		{Service: "cas", Route: "default", Site: "dallas", Endpoints: []failover.Endpoint{{Name: "d1", Address: "192.0.2.10"}}},
		{Service: "cas", Route: "bredband", Site: "london", Endpoints: []failover.Endpoint{{Name: "l1", Address: "203.0.113.10"}}},
	}})
	if _, _, ok := st.Snapshot().RouteAddr(0, netip.MustParseAddr("89.160.20.1")); ok {
		t.Fatal("an ASN router has a table")
	}
	w := newTestServer(t, Options{Source: st}).newUDPWorker()
	for i, c := range []serviceCase{
		{name: "asn 29518", from: "216.160.83.56", opts: []dns.EDNS0{ecs("89.160.20.0/24")}, answer: []string{londonA}, ecs: "89.160.20.0/24/17"},
		{name: "other asn", from: "216.160.83.56", opts: []dns.EDNS0{ecs("1.0.0.0/24")}, answer: []string{dallasA}, ecs: "1.0.0.0/24/24"},
		{name: "by source", from: "89.160.20.112", answer: []string{londonA}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for round := range 2 {
				id := uint16(10*i + round)
				req, _ := c.query(id).Pack()
				c.check(t, w.respondFrom(nil, req, netip.MustParseAddr(c.from)), id)
			}
		})
	}
}
