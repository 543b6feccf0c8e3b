package zones

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const dnameZone = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 host 1 3600 600 86400 60
@ NS ns1
ns1 A 192.0.2.1
old 600 DNAME new
old TXT "at the owner"
new A 192.0.2.9
www.new A 192.0.2.10
www.new AAAA 2001:db8::10
ext DNAME example.net.
wild DNAME wildtarget
*.wildtarget A 192.0.2.77
self DNAME x.self
long DNAME ` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com." + `
cname CNAME x.old
ent.below DNAME new
`

// TestDNAME: RFC 6672 as NSD and Knot serve it.
func TestDNAME(t *testing.T) {
	z, err := Parse(strings.NewReader(dnameZone), "", "dname.zone")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSnapshot(z)
	const dn = "old.example.com. 600 IN DNAME new.example.com."
	soa := "example.com. 60 IN SOA ns1.example.com. host.example.com. 1 3600 600 86400 60"
	for _, tc := range []lookupCase{
		{name: "the DNAME at its owner", qname: "old.example.com.", qtype: dns.TypeDNAME, rcode: dns.RcodeSuccess, aa: true, answer: []string{dn}},
		{name: "other data at the owner", qname: "old.example.com.", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, aa: true, answer: []string{`old.example.com. 300 IN TXT "at the owner"`}},
		{name: "no A at the owner: NODATA", qname: "old.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true, ns: []string{soa}},
		{name: "below: DNAME, CNAME with its TTL, the target's answer", qname: "www.old.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{dn, "www.old.example.com. 600 IN CNAME www.new.example.com.", "www.new.example.com. 300 IN A 192.0.2.10"}},
		{name: "qname case kept in the synthesised owner and target", qname: "WwW.old.example.com.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{dn, "WwW.old.example.com. 600 IN CNAME WwW.new.example.com.", "www.new.example.com. 300 IN AAAA 2001:db8::10"}},
		{name: "below, target missing: NXDOMAIN", qname: "nope.old.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			answer: []string{dn, "nope.old.example.com. 600 IN CNAME nope.new.example.com."}, ns: []string{soa}},
		{name: "a name below is redirected", qname: "hidden.old.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			answer: []string{dn, "hidden.old.example.com. 600 IN CNAME hidden.new.example.com."}, ns: []string{soa}},
		{name: "CNAME below: the synthesised CNAME is the answer", qname: "nope.old.example.com.", qtype: dns.TypeCNAME, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{dn, "nope.old.example.com. 600 IN CNAME nope.new.example.com."}},
		{name: "ANY below", qname: "www.old.example.com.", qtype: dns.TypeANY, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{dn, "www.old.example.com. 600 IN CNAME www.new.example.com.", "www.new.example.com. 300 IN A 192.0.2.10"}},
		{name: "ANY at the owner: one RRset", qname: "old.example.com.", qtype: dns.TypeANY, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{`old.example.com. 300 IN TXT "at the owner"`}},
		{name: "out of zone target: ends", qname: "a.b.ext.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"ext.example.com. 300 IN DNAME example.net.", "a.b.ext.example.com. 300 IN CNAME a.b.example.net."}},
		{name: "target matched by a wildcard", qname: "x.wild.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"wild.example.com. 300 IN DNAME wildtarget.example.com.", "x.wild.example.com. 300 IN CNAME x.wildtarget.example.com.",
				"x.wildtarget.example.com. 300 IN A 192.0.2.77"}},
		{name: "substitution too long: YXDOMAIN", qname: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.long.example.com.", qtype: dns.TypeA, rcode: dns.RcodeYXDomain, aa: true,
			answer: []string{"long.example.com. 300 IN DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com."}},
		{name: "CNAME into a DNAME", qname: "cname.example.com.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			answer: []string{"cname.example.com. 300 IN CNAME x.old.example.com.", dn, "x.old.example.com. 600 IN CNAME x.new.example.com."}, ns: []string{soa}},
		{name: "DNAME under an empty non-terminal", qname: "www.ent.below.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"ent.below.example.com. 300 IN DNAME new.example.com.", "www.ent.below.example.com. 300 IN CNAME www.new.example.com.", "www.new.example.com. 300 IN A 192.0.2.10"}},
		{name: "ENT above a DNAME is NODATA", qname: "below.example.com.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true, ns: []string{soa}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.zone = "example.com."
			checkResult(t, s.Lookup(tc.qname, tc.qtype, dns.ClassINET, false), tc)
		})
	}
	// A DNAME whose target lies below itself expands until the chain or
	// name length stops it; it must end.
	res := s.Lookup("a.self.example.com.", dns.TypeA, dns.ClassINET, false)
	if len(res.Answer) == 0 || len(res.Answer) > 2*maxChain {
		t.Errorf("self-referencing DNAME: %d answers", len(res.Answer))
	}
}
