package zones

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// escapedZone is issue 10's first fault: names written with \DDD and \X
// escapes, in owners and in RDATA.
const escapedZone = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 host 1 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
has\046dot A 192.0.2.2
alias CNAME t\097rget
target A 192.0.2.7
Office\032Printer._ipp._tcp SRV 0 0 631 prn
Office\032Printer._ipp._tcp TXT "txtvers=1"
prn A 192.0.2.8
mx MX 10 m\120
mx A 192.0.2.9
up\067ase A 192.0.2.10
`

// wireName is what the server passes to Lookup: the question's wire bytes
// as miekg/dns unpacks them.
func wireName(t *testing.T, labels ...string) string {
	t.Helper()
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	b = append(b, 0)
	name, _, err := dns.UnpackDomainName(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func TestEscapedNames(t *testing.T) {
	z, err := Parse(strings.NewReader(escapedZone), "", "escaped.zone")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSnapshot(z)
	for _, tc := range []struct {
		name   string
		qname  string
		qtype  uint16
		answer []string
		extra  []string
	}{
		{"dot in a label, from the wire", wireName(t, "has.dot", "example", "com"), dns.TypeA,
			[]string{`has\.dot.example.com. 300 IN A 192.0.2.2`}, nil},
		{"dot in a label, as \\046", `has\046dot.example.com.`, dns.TypeA,
			[]string{`has\046dot.example.com. 300 IN A 192.0.2.2`}, nil},
		{"CNAME target written with \\097", "alias.example.com.", dns.TypeA,
			[]string{"alias.example.com. 300 IN CNAME target.example.com.", "target.example.com. 300 IN A 192.0.2.7"}, nil},
		{"space in a label: SRV", wireName(t, "Office Printer", "_ipp", "_tcp", "example", "com"), dns.TypeSRV,
			[]string{`Office\032Printer._ipp._tcp.example.com. 300 IN SRV 0 0 631 prn.example.com.`},
			[]string{"prn.example.com. 300 IN A 192.0.2.8"}},
		{"space in a label: TXT", wireName(t, "office printer", "_ipp", "_tcp", "example", "com"), dns.TypeTXT,
			[]string{`office\032printer._ipp._tcp.example.com. 300 IN TXT "txtvers=1"`}, nil},
		{"MX target written with \\120 gets its address", "mx.example.com.", dns.TypeMX,
			[]string{"mx.example.com. 300 IN MX 10 mx.example.com."},
			[]string{"mx.example.com. 300 IN A 192.0.2.9"}},
		{"escaped upper case letter matches any case", "upcase.example.com.", dns.TypeA,
			[]string{"upcase.example.com. 300 IN A 192.0.2.10"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.Lookup(tc.qname, tc.qtype, dns.ClassINET, false)
			if res.Rcode != dns.RcodeSuccess || !res.Authoritative {
				t.Errorf("rcode %s aa %v, want NOERROR aa", dns.RcodeToString[res.Rcode], res.Authoritative)
			}
			if got, want := strs(res.Answer), rrs(t, tc.answer...); !equalSet(got, want) {
				t.Errorf("answer\n got %q\nwant %q", got, want)
			}
			if got, want := strs(res.Extra), rrs(t, tc.extra...); !equalSet(got, want) {
				t.Errorf("additional\n got %q\nwant %q", got, want)
			}
		})
	}
}

func equalSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
		if m[s] < 0 {
			return false
		}
	}
	return true
}
