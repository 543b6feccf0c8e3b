package dnsserver

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestTSIGUnknownKey: RFC 8945 §5.2 (ISC genreport "dnswkk"): a query
// signed under a key we do not know gets NOTAUTH, unsigned, with a TSIG
// carrying BADKEY and no question (as NSD); a TSIG that is not the last record is FORMERR.
func TestTSIGUnknownKey(t *testing.T) {
	s := newTestServer(t, Options{})
	now := time.Now().Unix()
	signed := func(edns bool) []byte {
		return withMsg(t, q{id: 90, name: "www.example.com.", qtype: dns.TypeA, rd: true, edns: edns}, func(m *dns.Msg) {
			m.SetTsig("unknown.key.", dns.HmacSHA256, 300, now)
			m.Extra[len(m.Extra)-1].(*dns.TSIG).MAC = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
			m.Extra[len(m.Extra)-1].(*dns.TSIG).MACSize = 32
		})
	}
	for _, w := range []*worker{s.newUDPWorker(), s.h.newWorker(protoTCP, nil, s.tcpCtr)} {
		for _, edns := range []bool{false, true} {
			out := w.respond(nil, signed(edns))
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("%v edns %v: unpack: %v", w.proto, edns, err)
			}
			if m.Rcode != dns.RcodeNotAuth || m.Id != 90 || !m.Response || m.Authoritative || len(m.Answer)+len(m.Ns) != 0 {
				t.Errorf("%v edns %v: rcode %s id %d flags %q", w.proto, edns, dns.RcodeToString[m.Rcode], m.Id, flagString(m))
			}
			if len(m.Question) != 0 {
				t.Errorf("question %v, want none (as NSD)", m.Question)
			}
			if (m.IsEdns0() != nil) != edns {
				t.Errorf("edns %v: OPT %v", edns, m.IsEdns0())
			}
			ts := m.IsTsig()
			if ts == nil || m.Extra[len(m.Extra)-1] != ts {
				t.Fatalf("%v edns %v: no TSIG last: %v", w.proto, edns, m.Extra)
			}
			if ts.Hdr.Name != "unknown.key." || ts.Hdr.Class != dns.ClassANY || ts.Hdr.Ttl != 0 || ts.Algorithm != dns.HmacSHA256 ||
				ts.Error != dns.RcodeBadKey || ts.MACSize != 0 || ts.OrigId != 90 || ts.TimeSigned != uint64(now) || ts.Fudge != 300 {
				t.Errorf("TSIG %v", ts)
			}
		}
	}
	// A TSIG followed by an OPT is not last: FORMERR.
	req := withMsg(t, q{id: 91, name: "www.example.com.", qtype: dns.TypeA}, func(m *dns.Msg) {
		m.SetTsig("unknown.key.", dns.HmacSHA256, 300, now)
		m.SetEdns0(1232, false)
	})
	check(t, s.newUDPWorker().respond(nil, req), 91, want{rcode: 1, hdrRcode: 1, flags: "qr"})
}
