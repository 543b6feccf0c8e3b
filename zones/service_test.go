package zones

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/geo"
)

const soaOrg = "example.org. 300 IN SOA ns1.example.org. hostmaster.example.org. %d 7200 3600 1209600 60"

func ep(addrs ...string) []failover.Endpoint {
	out := make([]failover.Endpoint, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, failover.Endpoint{Name: a, Address: a})
	}
	return out
}

// testRouting is the fixed routing view of the service tests: what
// failover.State.Answers() says in each situation, as the node hands it
// over.
func testRouting(version uint64) *Routing {
	return &Routing{Version: version, Answers: []failover.Answer{
		// apex: both families at dallas.
		{Service: "apex", Route: "default", Site: "dallas", Endpoints: ep("192.0.2.10", "2001:db8::10")},
		// cas: dallas by default, london for Europe.
		{Service: "cas", Route: "default", Site: "dallas", Endpoints: ep("192.0.2.10", "192.0.2.11", "2001:db8::10")},
		{Service: "cas", Route: "eu", Site: "london", Endpoints: ep("203.0.113.10")},
		// mail: one of two dallas endpoints is down: only the other.
		{Service: "mail", Route: "default", Site: "dallas", Endpoints: ep("192.0.2.21")},
		// sitedown: dallas is down, losangeles took over.
		{Service: "sitedown", Route: "default", Site: "losangeles", Endpoints: ep("198.51.100.10", "198.51.100.11")},
		// alldown: every site down: the last active site's endpoints, all of them.
		{Service: "alldown", Route: "default", Site: "dallas", Endpoints: ep("192.0.2.30", "192.0.2.31"),
			FailOpen: true, Condition: failover.AllDown},
		// v6: a site with AAAA endpoints only.
		{Service: "v6", Route: "default", Site: "dallas", Endpoints: ep("2001:db8::60", "2001:db8::61")},
		// cdn: a host name endpoint in the zone; ext: one outside it.
		{Service: "cdn", Route: "default", Site: "dallas", Endpoints: ep("host.example.org")},
		{Service: "ext", Route: "default", Site: "dallas", Endpoints: ep("LB.example.net.", "192.0.2.9")},
		// noroute has no answer in the view.
	}}
}

func testServices(t testing.TB, loc *geo.Locator) *Services {
	t.Helper()
	eu, err := geo.NewRouter("default", []geo.Rule{{Name: "eu", Continents: []string{"EU"}}})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := NewServices(loc, []Service{
		{Name: "apex", Names: []string{"example.org"}, TTL: 30},
		{Name: "cas", Names: []string{"cas.example.org.", "OWA.example.org", "deep.a.b.example.org"}, TTL: 20, Router: eu},
		{Name: "mail", Names: []string{"mail.example.org"}, TTL: 30},
		{Name: "sitedown", Names: []string{"sd.example.org"}, TTL: 30},
		{Name: "alldown", Names: []string{"ad.example.org"}, TTL: 30},
		{Name: "v6", Names: []string{"v6.example.org"}, TTL: 30},
		{Name: "cdn", Names: []string{"cdn.example.org"}, TTL: 40},
		{Name: "ext", Names: []string{"ext.example.org"}, TTL: 40},
		{Name: "noroute", Names: []string{"nr.example.org"}, TTL: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svcs
}

func testOrgZone(t testing.TB) *Zone {
	t.Helper()
	return mustParseFile(t, "testdata/services/example.org.zone")
}

func TestServiceAnswers(t *testing.T) {
	svcs := testServices(t, nil)
	snap := newSnapshot([]*Zone{testOrgZone(t)}, svcs, testRouting(7))
	soa := strings.Replace(soaOrg, "%d", "2024050107", 1) // file serial + routing version 7
	org := "example.org."
	const eu = 1 // route index of "eu" in cas's router
	cases := []struct {
		lookupCase
		routes []uint8
	}{
		{lookupCase: lookupCase{name: "a from the default route", qname: "cas.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"cas.example.org. 20 IN A 192.0.2.10", "cas.example.org. 20 IN A 192.0.2.11"}}},
		{lookupCase: lookupCase{name: "aaaa from the same endpoints", qname: "cas.example.org.", qtype: dns.TypeAAAA, aa: true, zone: org,
			answer: []string{"cas.example.org. 20 IN AAAA 2001:db8::10"}}},
		{lookupCase: lookupCase{name: "the client's route", qname: "cas.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"cas.example.org. 20 IN A 203.0.113.10"}}, routes: []uint8{0, eu}},
		{lookupCase: lookupCase{name: "a family with no endpoint is nodata", qname: "cas.example.org.", qtype: dns.TypeAAAA, aa: true, zone: org,
			ns: []string{soa}}, routes: []uint8{0, eu}},
		{lookupCase: lookupCase{name: "another name of the service, case kept", qname: "Owa.Example.ORG.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"Owa.Example.ORG. 20 IN A 192.0.2.10", "Owa.Example.ORG. 20 IN A 192.0.2.11"}}},
		{lookupCase: lookupCase{name: "a name under empty non-terminals", qname: "deep.a.b.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"deep.a.b.example.org. 20 IN A 192.0.2.10", "deep.a.b.example.org. 20 IN A 192.0.2.11"}}},
		{lookupCase: lookupCase{name: "its empty non-terminal is nodata", qname: "a.b.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			ns: []string{soa}}},
		{lookupCase: lookupCase{name: "other types from the zone file", qname: "cas.example.org.", qtype: dns.TypeTXT, aa: true, zone: org,
			answer: []string{`cas.example.org. 300 IN TXT "static data at a service name"`}}},
		{lookupCase: lookupCase{name: "other types absent: nodata", qname: "cas.example.org.", qtype: dns.TypeSRV, aa: true, zone: org,
			ns: []string{soa}}},
		{lookupCase: lookupCase{name: "mx at a service name, target a service", qname: "cas.example.org.", qtype: dns.TypeMX, aa: true, zone: org,
			answer: []string{"cas.example.org. 300 IN MX 5 mail.example.org."},
			extra:  []string{"mail.example.org. 30 IN A 192.0.2.21"}}},
		{lookupCase: lookupCase{name: "below a service name is nxdomain", qname: "x.cas.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			aa: true, zone: org, ns: []string{soa}}},
		{lookupCase: lookupCase{name: "any is the a rrset", qname: "cas.example.org.", qtype: dns.TypeANY, aa: true, zone: org,
			answer: []string{"cas.example.org. 20 IN A 192.0.2.10", "cas.example.org. 20 IN A 192.0.2.11"}}},

		// The failover situations, as failover.Answer renders them.
		{lookupCase: lookupCase{name: "endpoint down: the others", qname: "mail.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"mail.example.org. 30 IN A 192.0.2.21"}}},
		{lookupCase: lookupCase{name: "site down: the next site", qname: "sd.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"sd.example.org. 30 IN A 198.51.100.10", "sd.example.org. 30 IN A 198.51.100.11"}}},
		{lookupCase: lookupCase{name: "all down: fail open with every endpoint", qname: "ad.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"ad.example.org. 30 IN A 192.0.2.30", "ad.example.org. 30 IN A 192.0.2.31"}}},
		{lookupCase: lookupCase{name: "aaaa-only site: aaaa", qname: "v6.example.org.", qtype: dns.TypeAAAA, aa: true, zone: org,
			answer: []string{"v6.example.org. 30 IN AAAA 2001:db8::60", "v6.example.org. 30 IN AAAA 2001:db8::61"}}},
		{lookupCase: lookupCase{name: "aaaa-only site: a is nodata", qname: "v6.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			ns: []string{soa}}},
		{lookupCase: lookupCase{name: "no answer in the routing view: servfail", qname: "nr.example.org.", qtype: dns.TypeA,
			rcode: dns.RcodeServerFailure, zone: org}},

		// Host name endpoints: a CNAME, chased in the zone.
		{lookupCase: lookupCase{name: "cname endpoint chased in zone", qname: "cdn.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"cdn.example.org. 40 IN CNAME host.example.org.", "host.example.org. 300 IN A 192.0.2.99"}}},
		{lookupCase: lookupCase{name: "cname endpoint, target has no aaaa", qname: "cdn.example.org.", qtype: dns.TypeAAAA, aa: true, zone: org,
			answer: []string{"cdn.example.org. 40 IN CNAME host.example.org."}, ns: []string{soa}}},
		{lookupCase: lookupCase{name: "cname question", qname: "cdn.example.org.", qtype: dns.TypeCNAME, aa: true, zone: org,
			answer: []string{"cdn.example.org. 40 IN CNAME host.example.org."}}},
		{lookupCase: lookupCase{name: "cname endpoint out of zone", qname: "ext.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"ext.example.org. 40 IN CNAME lb.example.net."}}},
		{lookupCase: lookupCase{name: "cname question at an address service: nodata", qname: "cas.example.org.", qtype: dns.TypeCNAME, aa: true, zone: org,
			ns: []string{soa}}},
		{lookupCase: lookupCase{name: "static cname into a service follows the route", qname: "alias.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"alias.example.org. 300 IN CNAME cas.example.org.", "cas.example.org. 20 IN A 203.0.113.10"}}, routes: []uint8{0, eu}},

		// Additionals: targets that are service names get the route's addresses.
		{lookupCase: lookupCase{name: "apex mx: service target addresses", qname: "example.org.", qtype: dns.TypeMX, aa: true, zone: org,
			answer: []string{"example.org. 300 IN MX 10 mail.example.org.", "example.org. 300 IN MX 20 mx.example.net."},
			extra:  []string{"mail.example.org. 30 IN A 192.0.2.21"}}},
		{lookupCase: lookupCase{name: "srv target: the client's route, both families", qname: "_autodiscover._tcp.example.org.", qtype: dns.TypeSRV, aa: true, zone: org,
			answer: []string{"_autodiscover._tcp.example.org. 300 IN SRV 0 0 443 cas.example.org."},
			extra:  []string{"cas.example.org. 20 IN A 192.0.2.10", "cas.example.org. 20 IN A 192.0.2.11", "cas.example.org. 20 IN AAAA 2001:db8::10"}}},
		{lookupCase: lookupCase{name: "srv target for europe", qname: "_autodiscover._tcp.example.org.", qtype: dns.TypeSRV, aa: true, zone: org,
			answer: []string{"_autodiscover._tcp.example.org. 300 IN SRV 0 0 443 cas.example.org."},
			extra:  []string{"cas.example.org. 20 IN A 203.0.113.10"}}, routes: []uint8{0, eu}},
		{lookupCase: lookupCase{name: "wildcard mx target", qname: "x.wild.example.org.", qtype: dns.TypeMX, aa: true, zone: org,
			answer: []string{"x.wild.example.org. 300 IN MX 10 mail.example.org."},
			extra:  []string{"mail.example.org. 30 IN A 192.0.2.21"}}},

		// The apex as a service name.
		{lookupCase: lookupCase{name: "apex a", qname: "example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"example.org. 30 IN A 192.0.2.10"}}},
		{lookupCase: lookupCase{name: "apex aaaa", qname: "example.org.", qtype: dns.TypeAAAA, aa: true, zone: org,
			answer: []string{"example.org. 30 IN AAAA 2001:db8::10"}}},
		{lookupCase: lookupCase{name: "apex soa: serial follows the routing version", qname: "example.org.", qtype: dns.TypeSOA, aa: true, zone: org,
			answer: []string{strings.Replace(soa, " 300 IN SOA", " 300 IN SOA", 1)}}},
		{lookupCase: lookupCase{name: "apex txt from the file", qname: "example.org.", qtype: dns.TypeTXT, aa: true, zone: org,
			answer: []string{`example.org. 300 IN TXT "apex is a service name too"`}}},
		{lookupCase: lookupCase{name: "apex ns with glue", qname: "example.org.", qtype: dns.TypeNS, aa: true, zone: org,
			answer: []string{"example.org. 300 IN NS ns1.example.org."}, extra: []string{"ns1.example.org. 300 IN A 192.0.2.53"}}},

		// Static names are unchanged.
		{lookupCase: lookupCase{name: "static name", qname: "www.example.org.", qtype: dns.TypeA, aa: true, zone: org,
			answer: []string{"www.example.org. 300 IN A 192.0.2.80"}}},
		{lookupCase: lookupCase{name: "nxdomain carries the new serial", qname: "nope.example.org.", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			aa: true, zone: org, ns: []string{soa}}},
		{lookupCase: lookupCase{name: "referral", qname: "x.sub.example.org.", qtype: dns.TypeA, zone: org,
			ns: []string{"sub.example.org. 300 IN NS ns.sub.example.org."}, extra: []string{"ns.sub.example.org. 300 IN A 192.0.2.77"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := snap.Answer(Question{Name: tc.qname, Type: tc.qtype, Class: dns.ClassINET, Routes: tc.routes})
			if tc.ns != nil && len(tc.ns) == 1 && strings.Contains(tc.ns[0], " SOA ") {
				// Negative answers: the SOA TTL is min(SOA TTL, MINIMUM).
				tc.ns = []string{strings.Replace(tc.ns[0], "example.org. 300 IN SOA", "example.org. 60 IN SOA", 1)}
			}
			checkResult(t, got, tc.lookupCase)
		})
	}
}

// Which names each service's route decides, as the server keys its cache.
func TestServiceDynamic(t *testing.T) {
	snap := newSnapshot([]*Zone{testOrgZone(t)}, testServices(t, nil), testRouting(1))
	const apex, cas, mail, cdn = 0, 1, 2, 6
	for name, want := range map[string][]int{
		"example.org.":                    {apex, mail},
		"cas.example.org.":                {cas, mail},
		"alias.example.org.":              {cas, mail}, // through cas, whose MX names mail: more than needed, never less
		"_autodiscover._tcp.example.org.": {cas},
		"cdn.example.org.":                {cdn},
		"www.example.org.":                {mail}, // not dependent, but a wildcard might be: see below
		"nope.example.org.":               {mail},
	} {
		buf := make([]byte, 255)
		n, err := dns.PackDomainName(name, buf, 0, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.Dynamic(buf[:n]); !slices.Equal(got, want) {
			t.Errorf("Dynamic(%s) = %v, want %v", name, got, want)
		}
	}
	// Without the wildcard MX, static names depend on nothing.
	z, err := Parse(strings.NewReader("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\n"), "example.org.", "x.zone")
	if err != nil {
		t.Fatal(err)
	}
	snap = newSnapshot([]*Zone{z}, testServices(t, nil), testRouting(1))
	if got := snap.Dynamic([]byte("\x03www\x07example\x03org\x00")); got != nil {
		t.Errorf("static name: %v", got)
	}
	if got := snap.Dynamic([]byte("\x03cas\x07example\x03org\x00")); !slices.Equal(got, []int{cas}) {
		t.Errorf("service name: %v", got)
	}
}

func TestServiceSerial(t *testing.T) {
	z := testOrgZone(t)
	svcs := testServices(t, nil)
	serial := func(v uint64) uint32 {
		return newSnapshot([]*Zone{z}, svcs, testRouting(v)).zones["example.org."].SOA().Serial
	}
	// The same file and version give the same serial on every node; each
	// version change is an increase in RFC 1982 order, also across the wrap.
	if a, b := serial(5), serial(5); a != b || a != 2024050105 {
		t.Errorf("serial(5) = %d, %d", a, b)
	}
	less := func(a, b uint32) bool { return a != b && b-a < 1<<31 } // RFC 1982 §3.2
	for _, v := range []uint64{0, 1, 1<<32 - 2024050100 - 1, 1<<32 - 2024050100, 1 << 40} {
		if a, b := serial(v), serial(v+1); !less(a, b) {
			t.Errorf("version %d -> %d: serial %d -> %d is not an increase", v, v+1, a, b)
		}
	}
	// The zone of the file itself is untouched; a zone without services keeps its serial.
	if z.SOA().Serial != 2024050100 {
		t.Errorf("file zone modified: %d", z.SOA().Serial)
	}
	net := mustParseFile(t, "testdata/example.net.zone")
	if s := newSnapshot([]*Zone{z, net}, svcs, testRouting(9)).zones["example.net."].SOA().Serial; s != net.SOA().Serial {
		t.Errorf("zone without services: serial %d", s)
	}
}

func TestCheckServices(t *testing.T) {
	z := testOrgZone(t)
	svcs, err := NewServices(nil, []Service{
		{Name: "ok", Names: []string{"cas.example.org"}},
		{Name: "clash", Names: []string{"www.example.org", "host.example.org"}},
		{Name: "cname", Names: []string{"alias.example.org"}},
		{Name: "outside", Names: []string{"cas.example.com"}},
		{Name: "delegated", Names: []string{"x.sub.example.org", "sub.example.org"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = CheckServices(svcs, z)
	want := []string{
		`service "clash": name www.example.org.: the zone file also has A records there (testdata/services/example.org.zone:15)`,
		`service "clash": name host.example.org.: the zone file also has A records there (testdata/services/example.org.zone:14)`,
		`service "cname": name alias.example.org.: the zone file also has CNAME records there (testdata/services/example.org.zone:13)`,
		`service "outside": name cas.example.com.: not in any served zone`,
		`service "delegated": name x.sub.example.org.: at or below the delegation sub.example.org. of zone example.org. (testdata/services/example.org.zone:16)`,
		`service "delegated": name sub.example.org.: at or below the delegation sub.example.org. of zone example.org. (testdata/services/example.org.zone:16)`,
	}
	if err == nil {
		t.Fatal("no error")
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("CheckServices:\ngot  %q\nwant %q", got, want)
	}
	if err := CheckServices(testServices(t, nil), z); err != nil {
		t.Errorf("good services: %v", err)
	}

	// Below a DNAME a name is redirected (RFC 6672 §2.3): refused, as data
	// there is refused in the zone file; at the DNAME's owner it is not.
	dz, err := Parse(strings.NewReader("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nd1 DNAME t1\n"), "dn.test.", "dn.zone")
	if err != nil {
		t.Fatal(err)
	}
	below, err := NewServices(nil, []Service{{Name: "s", Names: []string{"s.d1.dn.test", "d1.dn.test", "x.y.d1.dn.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		`service "s": name s.d1.dn.test.: below the DNAME d1.dn.test. of zone dn.test. (dn.zone:5)`,
		`service "s": name x.y.d1.dn.test.: below the DNAME d1.dn.test. of zone dn.test. (dn.zone:5)`,
	}
	if err := CheckServices(below, dz); err == nil || !slices.Equal(strings.Split(err.Error(), "\n"), want) {
		t.Errorf("below a DNAME:\ngot  %v\nwant %q", err, want)
	}
}

func TestNewServicesErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   []Service
		want string
	}{
		{"empty name", []Service{{Names: []string{"a.example."}}}, "services[0]: empty name"},
		{"twice", []Service{{Name: "a", Names: []string{"a.example."}}, {Name: "a", Names: []string{"b.example."}}}, `service "a": defined twice`},
		{"no names", []Service{{Name: "a"}}, `service "a": no names`},
		{"bad name", []Service{{Name: "a", Names: []string{"a..example"}}}, `service "a": names[0]: "a..example" is not a domain name`},
		{"wildcard", []Service{{Name: "a", Names: []string{"*.example"}}}, "cannot be a wildcard"},
		{"shared name", []Service{{Name: "a", Names: []string{"x.example"}}, {Name: "b", Names: []string{"X.example."}}},
			`service "b": names[0]: x.example. is also a name of service "a"`},
		{"ttl", []Service{{Name: "a", Names: []string{"x.example"}, TTL: 1 << 31}}, "ttl 2147483648 above 2147483647"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewServices(nil, tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// The store swaps routing views atomically and reports conflicts.
func TestStoreServices(t *testing.T) {
	data, err := os.ReadFile("testdata/services/example.org.zone")
	if err != nil {
		t.Fatal(err)
	}
	f := newStoreFixture(t)
	f.fs["zones/example.org.zone"] = file(string(data))
	if err := f.store.Load(); err != nil {
		t.Fatal(err)
	}
	a := func() string {
		r := f.store.Snapshot().Lookup("mail.example.org.", dns.TypeA, dns.ClassINET, false)
		return dns.RcodeToString[r.Rcode] + " " + strings.Join(strs(r.Answer), ",")
	}
	if got := a(); got != "NXDOMAIN " {
		t.Errorf("before services: %q", got)
	}
	if err := f.store.SetServices(testServices(t, nil)); err != nil {
		t.Fatal(err)
	}
	if got := a(); got != "SERVFAIL " {
		t.Errorf("before routing: %q", got)
	}
	v0 := f.store.Snapshot().Version()
	f.store.SetRouting(testRouting(3))
	if got := a(); got != "NOERROR mail.example.org.\t30\tIN\tA\t192.0.2.21" {
		t.Errorf("with routing: %q", got)
	}
	if f.store.Snapshot().Version() == v0 || f.store.Snapshot().RoutingVersion() != 3 {
		t.Error("the snapshot did not change with the routing view")
	}
	rt := testRouting(4)
	rt.Answers[3].Endpoints = ep("192.0.2.22")
	f.store.SetRouting(rt)
	if got := a(); got != "NOERROR mail.example.org.\t30\tIN\tA\t192.0.2.22" {
		t.Errorf("new routing: %q", got)
	}
	// A zone reload keeps services and routing.
	f.fs["zones/example.org.zone"] = file(strings.Replace(string(data), "2024050100", "2024050200", 1))
	if err := f.store.Load(); err != nil {
		t.Fatal(err)
	}
	if got := a(); got != "NOERROR mail.example.org.\t30\tIN\tA\t192.0.2.22" {
		t.Errorf("after reload: %q", got)
	}
	if s := f.store.Snapshot().Lookup("example.org.", dns.TypeSOA, dns.ClassINET, false).Answer[0].(*dns.SOA).Serial; s != 2024050204 {
		t.Errorf("serial after reload = %d", s)
	}
	// Conflicts are returned; the services are served anyway.
	bad, err := NewServices(nil, []Service{{Name: "w", Names: []string{"www.example.org"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.SetServices(bad); err == nil || !strings.Contains(err.Error(), "zone file also has A records") {
		t.Errorf("SetServices conflict: %v", err)
	}
}

func BenchmarkServiceAnswer(b *testing.B) {
	snap := newSnapshot([]*Zone{testOrgZone(b)}, testServices(b, nil), testRouting(1))
	q := Question{Name: "cas.example.org.", Type: dns.TypeA, Class: dns.ClassINET, Routes: []uint8{0, 1}}
	b.ReportAllocs()
	for b.Loop() {
		if r := snap.Answer(q); len(r.Answer) != 1 {
			b.Fatal(r)
		}
	}
}

// A nearest rule: the node expands it into failover routes with
// geo.ExpandNearest; the client's route index names the route of its
// nearest site, and the answer is that route's.
func TestServiceNearest(t *testing.T) {
	loc, err := geo.Open("../testdata/geoip/GeoIP2-City-Test.mmdb", "")
	if err != nil {
		t.Fatal(err)
	}
	sites := []geo.Site{{Name: "dallas", Latitude: 32.78, Longitude: -96.80}, {Name: "london", Latitude: 51.51, Longitude: -0.13}}
	router, err := geo.NewRouter("default", []geo.Rule{{Name: "near", Nearest: sites}})
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := NewServices(loc, []Service{{Name: "cas", Names: []string{"cas.example.org"}, TTL: 20, Router: router}})
	if err != nil {
		t.Fatal(err)
	}
	rt := &Routing{Version: 1, Answers: []failover.Answer{
		{Service: "cas", Route: "default", Site: "dallas", Endpoints: ep("192.0.2.10")},
	}}
	addrs := map[string]string{"dallas": "192.0.2.10", "london": "203.0.113.10"}
	for _, e := range geo.ExpandNearest("near", sites) {
		// The active site of each expanded route is its first site.
		rt.Answers = append(rt.Answers, failover.Answer{Service: "cas", Route: e.Name, Site: e.Sites[0], Endpoints: ep(addrs[e.Sites[0]])})
	}
	snap := newSnapshot([]*Zone{testOrgZone(t)}, svcs, rt)
	for client, want := range map[string]string{
		"81.2.69.142":   "203.0.113.10", // London
		"89.160.20.112": "203.0.113.10", // Linköping
		"216.160.83.56": "192.0.2.10",   // Milton, WA
		"175.16.199.1":  "203.0.113.10", // Changchun: nearer London than Dallas
		"8.8.8.8":       "192.0.2.10",   // no coordinates: the default route
	} {
		l := snap.Locate(netip.MustParseAddr(client))
		r, _ := snap.Route(0, &l)
		res := snap.Answer(Question{Name: "cas.example.org.", Type: dns.TypeA, Class: dns.ClassINET, Routes: []uint8{uint8(r)}})
		if len(res.Answer) != 1 || res.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("%s (route %s): %v, want %s", client, router.Routes()[r], res.Answer, want)
		}
	}
}

// TestTransferServiceNames: a transfer carries the service names with
// their current default-route answers and the served serial, next to the
// zone file's data; a routing change changes both.
func TestTransferServiceNames(t *testing.T) {
	svcs := testServices(t, nil)
	snap := newSnapshot([]*Zone{testOrgZone(t)}, svcs, testRouting(7))
	rrs, ok := snap.Transfer("example.org.")
	if !ok {
		t.Fatal("no transfer for example.org.")
	}
	got := map[string]bool{}
	for _, rr := range rrs {
		got[strings.Join(strings.Fields(rr.String()), " ")] = true
	}
	soa := strings.Join(strings.Fields(strings.Replace(soaOrg, "%d", "2024050107", 1)), " ")
	if first, last := rrs[0].String(), rrs[len(rrs)-1].String(); strings.Join(strings.Fields(first), " ") != soa || first != last {
		t.Errorf("first %q last %q, want the served SOA %q at both ends", first, last, soa)
	}
	for _, want := range []string{
		"cas.example.org. 20 IN A 192.0.2.10", "cas.example.org. 20 IN A 192.0.2.11", "cas.example.org. 20 IN AAAA 2001:db8::10",
		"owa.example.org. 20 IN A 192.0.2.10", "deep.a.b.example.org. 20 IN A 192.0.2.10",
		"mail.example.org. 30 IN A 192.0.2.21", "sd.example.org. 30 IN A 198.51.100.10",
		`cas.example.org. 300 IN TXT "static data at a service name"`,
		"cdn.example.org. 40 IN CNAME host.example.org.",
	} {
		if !got[want] {
			t.Errorf("transfer lacks %q", want)
		}
	}
	for rr := range got {
		if strings.HasPrefix(rr, "cas.example.org. 20 IN A 203.0.113.10") {
			t.Errorf("a non-default route in the transfer: %q", rr)
		}
	}
	// A routing change: new serial, new answers.
	rt := testRouting(8)
	rt.Answers[2-1].Endpoints = ep("192.0.2.99") // cas default route
	snap2 := newSnapshot([]*Zone{testOrgZone(t)}, svcs, rt)
	rrs2, _ := snap2.Transfer("example.org.")
	if rrs2[0].(*dns.SOA).Serial == rrs[0].(*dns.SOA).Serial {
		t.Errorf("serial %d unchanged by a routing change", rrs2[0].(*dns.SOA).Serial)
	}
	found := false
	for _, rr := range rrs2 {
		if strings.Join(strings.Fields(rr.String()), " ") == "cas.example.org. 20 IN A 192.0.2.99" {
			found = true
		}
	}
	if !found {
		t.Error("the changed route's answer is not in the new transfer")
	}
}

// TestServiceTTLFromRouting: the routing view's TTL (replicated in the
// failover spec) wins over the service's own, in answers and in additional
// sections; without one the service's TTL applies.
func TestServiceTTLFromRouting(t *testing.T) {
	svcs := testServices(t, nil)
	rt := testRouting(7)
	for i := range rt.Answers {
		if rt.Answers[i].Service == "mail" {
			rt.Answers[i].TTL = 45 * time.Second
		}
	}
	snap := newSnapshot([]*Zone{testOrgZone(t)}, svcs, rt)
	for _, tc := range []struct {
		name string
		ttl  uint32
	}{{"mail.example.org.", 45}, {"sd.example.org.", 30}} {
		res := snap.Lookup(tc.name, dns.TypeA, dns.ClassINET, false)
		if len(res.Answer) == 0 {
			t.Fatalf("%s: no answer", tc.name)
		}
		for _, rr := range res.Answer {
			if rr.Header().Ttl != tc.ttl {
				t.Errorf("%s: TTL %d, want %d: %v", tc.name, rr.Header().Ttl, tc.ttl, rr)
			}
		}
	}
}
