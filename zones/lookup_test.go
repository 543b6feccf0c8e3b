package zones

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testSnapshot loads the good zones of testdata: example.com with the child
// sub2.example.com, and example.net.
func testSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	var zs []*Zone
	for _, f := range []string{"example.com.zone", "sub2.example.com.zone", "example.net.zone"} {
		zs = append(zs, mustParseFile(t, "testdata/"+f))
	}
	return NewSnapshot(zs...)
}

func mustParseFile(t testing.TB, file string) *Zone {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	origin := ""
	if file == "testdata/example.net.zone" {
		origin = "example.net."
	}
	z, err := Parse(fh, origin, file)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return z
}

// rrs normalises records written in zone file syntax to their String form.
func rrs(t *testing.T, ss ...string) []string {
	t.Helper()
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		rr, err := dns.NewRR(s)
		if err != nil || rr == nil {
			t.Fatalf("bad test RR %q: %v", s, err)
		}
		out = append(out, rr.String())
	}
	return out
}

func strs(rs []dns.RR) []string {
	out := make([]string, 0, len(rs))
	for _, rr := range rs {
		out = append(out, rr.String())
	}
	return out
}

const (
	soaCom  = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"
	soaNet  = "example.net. 3600 IN SOA ns.example.net. admin.example.net. 1 3600 600 86400 3600"
	soaSub2 = "sub2.example.com. 60 IN SOA ns1.sub2.example.com. hostmaster.sub2.example.com. 7 3600 900 604800 60"
)

var (
	wwwA  = []string{"www.example.com. 300 IN A 192.0.2.80", "www.example.com. 300 IN A 192.0.2.81"}
	subNS = []string{
		"sub.example.com. 3600 IN NS ns1.sub.example.com.",
		"sub.example.com. 3600 IN NS ns2.sub.example.com.",
		"sub.example.com. 3600 IN NS ns.example.net.",
	}
	subGlue = []string{
		"ns1.sub.example.com. 3600 IN A 192.0.2.201",
		"ns2.sub.example.com. 3600 IN A 192.0.2.202",
		"ns2.sub.example.com. 3600 IN AAAA 2001:db8::202",
	}
)

type lookupCase struct {
	name   string
	qname  string
	qtype  uint16
	qclass uint16 // 0 means IN

	rcode  int
	aa     bool
	zone   string
	answer []string
	ns     []string
	extra  []string
}

func TestLookup(t *testing.T) {
	s := testSnapshot(t)
	c14 := []string{}
	for i := 1; i <= 12; i++ {
		c14 = append(c14, fmt.Sprintf("c%d.example.com. 3600 IN CNAME c%d.example.com.", i, i+1))
	}
	big := []string{}
	for i, c := range "abcdefghijklmnopqrst" {
		big = append(big, fmt.Sprintf(`big.example.com. 3600 IN TXT "record %02d %s"`, i+1, strings.Repeat(string(c), 60)))
	}
	cases := []lookupCase{
		// Positive answers: no authority (minimal responses).
		{name: "a rrset", qname: "www.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", answer: wwwA},
		{name: "aaaa", qname: "www.example.com.", qtype: dns.TypeAAAA, aa: true, zone: "example.com.",
			answer: []string{"www.example.com. 300 IN AAAA 2001:db8::80"}},
		{name: "qname case is kept in answer owners", qname: "WwW.ExAmPlE.cOm.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"WwW.ExAmPlE.cOm. 300 IN A 192.0.2.80", "WwW.ExAmPlE.cOm. 300 IN A 192.0.2.81"}},
		{name: "owner names are canonicalised at load", qname: "mail.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"mail.example.com. 3600 IN A 192.0.2.25"}},
		{name: "qname without trailing dot", qname: "www.example.com", qtype: dns.TypeA, aa: true, zone: "example.com.", answer: wwwA},
		{name: "apex soa", qname: "example.com.", qtype: dns.TypeSOA, aa: true, zone: "example.com.",
			answer: []string{"example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"}},
		{name: "apex ns with glue-allowed additionals, A before AAAA", qname: "example.com.", qtype: dns.TypeNS, aa: true, zone: "example.com.",
			answer: []string{"example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com.", "example.com. 3600 IN NS ns.example.net."},
			extra:  []string{"ns1.example.com. 3600 IN A 192.0.2.53", "ns2.example.com. 7200 IN A 192.0.2.54", "ns1.example.com. 3600 IN AAAA 2001:db8::53"}},
		{name: "mx additionals only in zone", qname: "example.com.", qtype: dns.TypeMX, aa: true, zone: "example.com.",
			answer: []string{"example.com. 3600 IN MX 10 mail.example.com.", "example.com. 3600 IN MX 20 mail2.example.net."},
			extra:  []string{"mail.example.com. 3600 IN A 192.0.2.25"}},
		{name: "srv additionals", qname: "_sip._tcp.example.com.", qtype: dns.TypeSRV, aa: true, zone: "example.com.",
			answer: []string{"_sip._tcp.example.com. 3600 IN SRV 10 60 5060 sip.example.com."},
			extra:  []string{"sip.example.com. 3600 IN A 192.0.2.60", "sip.example.com. 3600 IN AAAA 2001:db8::60"}},
		{name: "big txt rrset, zone order, duplicate merged", qname: "big.example.com.", qtype: dns.TypeTXT, aa: true, zone: "example.com.", answer: big},
		{name: "other zone", qname: "www.example.net.", qtype: dns.TypeA, aa: true, zone: "example.net.",
			answer: []string{"www.example.net. 86400 IN A 198.51.100.80"}},

		// Negative answers: SOA with TTL min(SOA TTL, MINIMUM).
		{name: "nxdomain", qname: "nope.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "nodata", qname: "www.example.com.", qtype: dns.TypeTXT, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "nodata a at aaaa-only name", qname: "v6only.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "nodata rrsig (no dnssec yet)", qname: "www.example.com.", qtype: dns.TypeRRSIG, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "empty non-terminal is nodata", qname: "b.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "empty non-terminal two labels", qname: "a.b.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "below a leaf is nxdomain", qname: "y.x.a.b.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "negative ttl from soa ttl", qname: "nope.example.net.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.net.", ns: []string{soaNet}},

		// CNAME.
		{name: "cname chain", qname: "alias.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: append([]string{"alias.example.com. 3600 IN CNAME alias2.example.com.", "alias2.example.com. 3600 IN CNAME www.example.com."}, wwwA...)},
		{name: "cname chain keeps qname case on the first link only", qname: "ALIAS.example.com.", qtype: dns.TypeAAAA, aa: true, zone: "example.com.",
			answer: []string{"ALIAS.example.com. 3600 IN CNAME alias2.example.com.", "alias2.example.com. 3600 IN CNAME www.example.com.", "www.example.com. 300 IN AAAA 2001:db8::80"}},
		{name: "cname chain to nodata", qname: "alias.example.com.", qtype: dns.TypeTXT, aa: true, zone: "example.com.",
			answer: []string{"alias.example.com. 3600 IN CNAME alias2.example.com.", "alias2.example.com. 3600 IN CNAME www.example.com."},
			ns:     []string{soaCom}},
		{name: "cname to nxdomain is nxdomain (RFC 6604)", qname: "dangling.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.com.",
			answer: []string{"dangling.example.com. 3600 IN CNAME nothere.example.com."}, ns: []string{soaCom}},
		{name: "cname out of zone stops", qname: "ext.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"ext.example.com. 3600 IN CNAME www.example.org."}},
		{name: "qtype cname returns the cname only", qname: "alias.example.com.", qtype: dns.TypeCNAME, aa: true, zone: "example.com.",
			answer: []string{"alias.example.com. 3600 IN CNAME alias2.example.com."}},
		{name: "cname to canonicalised owner", qname: "tomx.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"tomx.example.com. 3600 IN CNAME mail.example.com.", "mail.example.com. 3600 IN A 192.0.2.25"}},
		{name: "cname loop", qname: "loop1.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"loop1.example.com. 3600 IN CNAME loop2.example.com.", "loop2.example.com. 3600 IN CNAME loop1.example.com."}},
		{name: "cname chain bound", qname: "c1.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", answer: c14},
		{name: "cname into a delegation: referral with aa", qname: "todeleg.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"todeleg.example.com. 3600 IN CNAME host.sub.example.com."}, ns: subNS, extra: subGlue},

		// Wildcards (RFC 4592).
		{name: "wildcard", qname: "foo.wild.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"foo.wild.example.com. 3600 IN A 192.0.2.100"}},
		{name: "wildcard keeps qname case", qname: "FoO.Wild.example.com.", qtype: dns.TypeTXT, aa: true, zone: "example.com.",
			answer: []string{`FoO.Wild.example.com. 3600 IN TXT "wildcard"`}},
		{name: "wildcard two labels deep", qname: "a.b.wild.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: []string{"a.b.wild.example.com. 3600 IN A 192.0.2.100"}},
		{name: "wildcard nodata", qname: "foo.wild.example.com.", qtype: dns.TypeAAAA, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "wildcard mx with additionals", qname: "foo.wild.example.com.", qtype: dns.TypeMX, aa: true, zone: "example.com.",
			answer: []string{"foo.wild.example.com. 3600 IN MX 10 mail.example.com."},
			extra:  []string{"mail.example.com. 3600 IN A 192.0.2.25"}},
		{name: "existing name blocks wildcard: nodata", qname: "blocked.wild.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "existing name blocks wildcard below it", qname: "x.blocked.wild.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "ent blocks wildcard: nodata", qname: "ent.wild.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "ent blocks wildcard below it", qname: "x.ent.wild.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "the wildcard name itself", qname: "*.wild.example.com.", qtype: dns.TypeTXT, aa: true, zone: "example.com.",
			answer: []string{`*.wild.example.com. 3600 IN TXT "wildcard"`}},
		{name: "wildcard cname", qname: "x.cwild.example.com.", qtype: dns.TypeA, aa: true, zone: "example.com.",
			answer: append([]string{"x.cwild.example.com. 3600 IN CNAME www.example.com."}, wwwA...)},
		{name: "wildcard cname to nxdomain", qname: "x.lwild.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "example.com.",
			answer: []string{"x.lwild.example.com. 3600 IN CNAME nothere2.example.com."}, ns: []string{soaCom}},
		{name: "additional from a wildcard", qname: "mxwild.example.com.", qtype: dns.TypeMX, aa: true, zone: "example.com.",
			answer: []string{"mxwild.example.com. 3600 IN MX 10 host.wild.example.com."},
			extra:  []string{"host.wild.example.com. 3600 IN A 192.0.2.100"}},

		// Delegations.
		{name: "referral at the cut", qname: "sub.example.com.", qtype: dns.TypeA, zone: "example.com.", ns: subNS, extra: subGlue},
		{name: "referral below the cut", qname: "www.sub.example.com.", qtype: dns.TypeA, zone: "example.com.", ns: subNS, extra: subGlue},
		{name: "referral for the glue name", qname: "ns1.sub.example.com.", qtype: dns.TypeA, zone: "example.com.", ns: subNS, extra: subGlue},
		{name: "referral for ns at the cut", qname: "sub.example.com.", qtype: dns.TypeNS, zone: "example.com.", ns: subNS, extra: subGlue},
		{name: "referral for any at the cut", qname: "sub.example.com.", qtype: dns.TypeANY, zone: "example.com.", ns: subNS, extra: subGlue},
		{name: "ds at the cut from the parent", qname: "sub.example.com.", qtype: dns.TypeDS, aa: true, zone: "example.com.",
			answer: []string{"sub.example.com. 3600 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}},
		{name: "ds below the cut is a referral", qname: "x.sub.example.com.", qtype: dns.TypeDS, zone: "example.com.", ns: subNS, extra: subGlue},
		{name: "no ds at the cut: parent nodata", qname: "nods.example.com.", qtype: dns.TypeDS, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "referral with in-zone authoritative ns addresses", qname: "nods.example.com.", qtype: dns.TypeA, zone: "example.com.",
			ns:    []string{"nods.example.com. 3600 IN NS ns1.example.com."},
			extra: []string{"ns1.example.com. 3600 IN A 192.0.2.53", "ns1.example.com. 3600 IN AAAA 2001:db8::53"}},

		// Parent and child both loaded.
		{name: "child apex soa from child", qname: "sub2.example.com.", qtype: dns.TypeSOA, aa: true, zone: "sub2.example.com.",
			answer: []string{"sub2.example.com. 600 IN SOA ns1.sub2.example.com. hostmaster.sub2.example.com. 7 3600 900 604800 60"}},
		{name: "child apex ns from child", qname: "sub2.example.com.", qtype: dns.TypeNS, aa: true, zone: "sub2.example.com.",
			answer: []string{"sub2.example.com. 600 IN NS ns1.sub2.example.com."},
			extra:  []string{"ns1.sub2.example.com. 600 IN A 192.0.2.210"}},
		{name: "child apex ds from parent", qname: "sub2.example.com.", qtype: dns.TypeDS, aa: true, zone: "example.com.",
			answer: []string{"sub2.example.com. 3600 IN DS 54321 13 2 FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210"}},
		{name: "child data", qname: "www.sub2.example.com.", qtype: dns.TypeA, aa: true, zone: "sub2.example.com.",
			answer: []string{"www.sub2.example.com. 600 IN A 192.0.2.211"}},
		{name: "child nxdomain with child soa", qname: "nope.sub2.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, zone: "sub2.example.com.", ns: []string{soaSub2}},
		{name: "ds at apex without loaded parent: nodata", qname: "example.com.", qtype: dns.TypeDS, aa: true, zone: "example.com.", ns: []string{soaCom}},

		// ANY (RFC 8482).
		{name: "any picks a preferred type", qname: "www.example.com.", qtype: dns.TypeANY, aa: true, zone: "example.com.", answer: wwwA},
		{name: "any at the apex", qname: "example.com.", qtype: dns.TypeANY, aa: true, zone: "example.com.",
			answer: []string{"example.com. 3600 IN A 192.0.2.1"}},
		{name: "any at a cname is the cname, not followed", qname: "alias.example.com.", qtype: dns.TypeANY, aa: true, zone: "example.com.",
			answer: []string{"alias.example.com. 3600 IN CNAME alias2.example.com."}},
		{name: "any with a normal type only", qname: "_sip._tcp.example.com.", qtype: dns.TypeANY, aa: true, zone: "example.com.",
			answer: []string{"_sip._tcp.example.com. 3600 IN SRV 10 60 5060 sip.example.com."},
			extra:  []string{"sip.example.com. 3600 IN A 192.0.2.60", "sip.example.com. 3600 IN AAAA 2001:db8::60"}},
		{name: "any at an ent", qname: "b.example.com.", qtype: dns.TypeANY, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "any nxdomain", qname: "nope.example.com.", qtype: dns.TypeANY, rcode: dns.RcodeNameError, aa: true, zone: "example.com.", ns: []string{soaCom}},
		{name: "any at a wildcard", qname: "q.wild.example.com.", qtype: dns.TypeANY, aa: true, zone: "example.com.",
			answer: []string{"q.wild.example.com. 3600 IN A 192.0.2.100"}},

		// Refused and classes.
		{name: "outside our zones", qname: "www.example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "root", qname: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
		{name: "parent of our zones", qname: "com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "class chaos", qname: "www.example.com.", qtype: dns.TypeA, qclass: dns.ClassCHAOS, rcode: dns.RcodeRefused},
		{name: "class none", qname: "www.example.com.", qtype: dns.TypeA, qclass: dns.ClassNONE, rcode: dns.RcodeRefused},
		{name: "class any: answer without aa", qname: "www.example.com.", qtype: dns.TypeA, qclass: dns.ClassANY, zone: "example.com.", answer: wwwA},
		{name: "class any: nxdomain without soa or aa", qname: "nope.example.com.", qtype: dns.TypeA, qclass: dns.ClassANY, rcode: dns.RcodeNameError, zone: "example.com."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			qclass := tc.qclass
			if qclass == 0 {
				qclass = dns.ClassINET
			}
			got := s.Lookup(tc.qname, tc.qtype, qclass, false)
			checkResult(t, got, tc)
		})
	}
}

func checkResult(t *testing.T, got Result, tc lookupCase) {
	t.Helper()
	if got.Rcode != tc.rcode {
		t.Errorf("rcode = %s, want %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[tc.rcode])
	}
	if got.Authoritative != tc.aa {
		t.Errorf("aa = %v, want %v", got.Authoritative, tc.aa)
	}
	if got.Zone != tc.zone {
		t.Errorf("zone = %q, want %q", got.Zone, tc.zone)
	}
	for _, sec := range []struct {
		name      string
		got, want []string
	}{
		{"answer", strs(got.Answer), rrs(t, tc.answer...)},
		{"ns", strs(got.Ns), rrs(t, tc.ns...)},
		{"extra", strs(got.Extra), rrs(t, tc.extra...)},
	} {
		// Every section's order is deterministic (RRset order is zone file
		// order, A before AAAA in additional), so compare exactly.
		if !slices.Equal(sec.got, sec.want) {
			t.Errorf("%s:\ngot  %q\nwant %q", sec.name, sec.got, sec.want)
		}
	}
}

// TestLookupOwnerBytes checks what the server relies on for compression:
// answer owners are byte-identical to the qname passed in.
func TestLookupOwnerBytes(t *testing.T) {
	s := testSnapshot(t)
	for _, q := range []string{"www.example.com.", "WWW.EXAMPLE.COM.", "x.Wild.example.com.", "Alias.example.com."} {
		res := s.Lookup(q, dns.TypeA, dns.ClassINET, false)
		if len(res.Answer) == 0 || res.Answer[0].Header().Name != q {
			t.Errorf("%s: first answer owner %v", q, res.Answer)
		}
	}
}

// TestLookupDoesNotMutate checks that rewriting owners copies RRs.
func TestLookupDoesNotMutate(t *testing.T) {
	s := testSnapshot(t)
	before := strs(s.Lookup("www.example.com.", dns.TypeA, dns.ClassINET, false).Answer)
	s.Lookup("WWW.example.com.", dns.TypeA, dns.ClassINET, false)
	s.Lookup("x.wild.example.com.", dns.TypeA, dns.ClassINET, false)
	after := strs(s.Lookup("www.example.com.", dns.TypeA, dns.ClassINET, false).Answer)
	if !slices.Equal(before, after) {
		t.Fatalf("snapshot changed: %q -> %q", before, after)
	}
	w := s.Lookup("*.wild.example.com.", dns.TypeA, dns.ClassINET, false).Answer
	if len(w) != 1 || w[0].Header().Name != "*.wild.example.com." {
		t.Fatalf("wildcard owner changed: %v", w)
	}
}

func TestSnapshot(t *testing.T) {
	a := NewSnapshot()
	s := testSnapshot(t)
	if s.Version() <= a.Version() {
		t.Errorf("versions not increasing: %d then %d", a.Version(), s.Version())
	}
	var origins []string
	for _, z := range s.Zones() {
		origins = append(origins, z.Origin())
	}
	want := []string{"example.com.", "example.net.", "sub2.example.com."}
	if !slices.Equal(origins, want) {
		t.Errorf("zones = %q, want %q", origins, want)
	}
	if r := a.Lookup("www.example.com.", dns.TypeA, dns.ClassINET, false); r.Rcode != dns.RcodeRefused || r.Authoritative {
		t.Errorf("empty snapshot: %+v", r)
	}
	// A later zone with the same origin replaces the earlier one.
	z1 := mustParseFile(t, "testdata/example.net.zone")
	z2 := mustParseFile(t, "testdata/example.net.zone")
	if got := NewSnapshot(z1, z2).Zones(); len(got) != 1 || got[0] != z2 {
		t.Errorf("same origin: got %v", got)
	}
}
