package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestTransfer: AXFR (and IXFR, answered in full) over TCP to an allowed
// address: the SOA, every record of the zone file, the SOA, across several
// messages for a big zone; refused to others; NOTAUTH for a name that is
// not a zone apex.
func TestTransfer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		allow   []netip.Prefix
		qname   string
		qtype   uint16
		rcode   int
		records int // 0: no transfer
		zone    string
		msgs    int // at least
	}{
		{"AXFR allowed", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "example.com.", dns.TypeAXFR, dns.RcodeSuccess, 1, testZone, 1},
		{"AXFR of a big zone: several messages", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "example.com.", dns.TypeAXFR, dns.RcodeSuccess, 1, fitZone, 5},
		{"IXFR answered in full, question case ignored", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "Example.COM.", dns.TypeIXFR, dns.RcodeSuccess, 1, testZone, 1},
		{"not allowed: REFUSED", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, "example.com.", dns.TypeAXFR, dns.RcodeRefused, 0, testZone, 0},
		{"none allowed: REFUSED", nil, "example.com.", dns.TypeAXFR, dns.RcodeRefused, 0, testZone, 0},
		{"not a zone apex: NOTAUTH", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "www.example.com.", dns.TypeAXFR, dns.RcodeNotAuth, 0, testZone, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{TransferAllow: tc.allow, Source: newSource(t, tc.zone), Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}, false)
			addr := s.TCPAddrs()[0].String()
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			if tc.qtype == dns.TypeIXFR {
				m.SetIxfr(tc.qname, 1, "ns1.example.com.", "hostmaster.example.com.")
			}
			tr := new(dns.Transfer)
			env, err := tr.In(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			var got []dns.RR
			var rcodeErr error
			messages := 0
			for e := range env {
				messages++
				if e.Error != nil {
					rcodeErr = e.Error
					continue
				}
				got = append(got, e.RR...)
			}
			if tc.records == 0 {
				if rcodeErr == nil || rcodeErr.Error() != fmt.Sprintf("dns: bad xfr rcode: %d", tc.rcode) {
					t.Fatalf("error %v, want rcode %s", rcodeErr, dns.RcodeToString[tc.rcode])
				}
				return
			}
			if rcodeErr != nil {
				t.Fatal(rcodeErr)
			}
			want := zoneRecords(t, tc.zone)
			if len(got) != len(want)+1 {
				t.Fatalf("%d records, want %d (the zone's %d and the closing SOA)", len(got), len(want)+1, len(want))
			}
			if got[0].Header().Rrtype != dns.TypeSOA || got[len(got)-1].Header().Rrtype != dns.TypeSOA || got[0].String() != got[len(got)-1].String() {
				t.Errorf("first %v, last %v: want the SOA at both ends", got[0], got[len(got)-1])
			}
			have := map[string]int{}
			for _, rr := range got[1 : len(got)-1] {
				have[rr.String()]++
			}
			for _, rr := range want {
				if rr.Header().Rrtype == dns.TypeSOA {
					continue
				}
				if have[rr.String()] == 0 {
					t.Errorf("missing %v", rr)
				}
				have[rr.String()]--
			}
			if messages < tc.msgs {
				t.Errorf("%d messages, want at least %d", messages, tc.msgs)
			}
		})
	}
}

// zoneRecords parses zone text with miekg/dns, owners lower-cased.
func zoneRecords(t *testing.T, text string) []dns.RR {
	t.Helper()
	var out []dns.RR
	seen := map[string]bool{}
	zp := dns.NewZoneParser(strings.NewReader(text), "example.com.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		if !seen[rr.String()] {
			seen[rr.String()] = true
			out = append(out, rr)
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
