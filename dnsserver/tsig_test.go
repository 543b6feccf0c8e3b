package dnsserver

import (
	"net/netip"
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

// TestTSIGKnownKey: a query signed with a configured key is answered and
// the reply signed (it verifies against the query's MAC); a wrong MAC is
// NOTAUTH with BADSIG; with keys configured a transfer must be signed, and
// each of its messages is signed (miekg/dns's client verifies the chain).
func TestTSIGKnownKey(t *testing.T) {
	const name, secret = "xfr.key.", "c2VjcmV0LWtleS1mb3ItZ2VvZG5zZC10ZXN0cw=="
	key := TSIGKey{Name: "XFR.key", Algorithm: dns.HmacSHA256, Secret: secret}
	s := startServer(t, Options{
		Source:        newSource(t, fitZone),
		Listen:        []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		TransferAllow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		TSIGKeys:      []TSIGKey{key},
	}, false)
	addr := s.TCPAddrs()[0].String()

	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{name: secret}}
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeSOA)
	m.SetTsig(name, dns.HmacSHA256, 300, time.Now().Unix())
	r, _, err := c.Exchange(m, addr) // verifies the reply's TSIG
	if err != nil {
		t.Fatalf("signed SOA query: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.IsTsig() == nil || r.IsTsig().Error != 0 {
		t.Fatalf("signed SOA reply:\n%v", r)
	}

	bad := &dns.Client{Net: "tcp", TsigSecret: map[string]string{name: "d3Jvbmctc2VjcmV0"}}
	m.SetTsig(name, dns.HmacSHA256, 300, time.Now().Unix())
	r, _, _ = bad.Exchange(m, addr)
	if r == nil || r.Rcode != dns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != dns.RcodeBadSig {
		t.Fatalf("wrong secret: want NOTAUTH with BADSIG, got\n%v", r)
	}

	for _, signedXfr := range []bool{true, false} {
		ax := new(dns.Msg)
		ax.SetAxfr("example.com.")
		tr := &dns.Transfer{}
		if signedXfr {
			tr.TsigSecret = map[string]string{name: secret}
			ax.SetTsig(name, dns.HmacSHA256, 300, time.Now().Unix())
		}
		env, err := tr.In(ax, addr)
		if err != nil {
			t.Fatal(err)
		}
		records, msgs := 0, 0
		var xerr error
		for e := range env {
			msgs++
			if e.Error != nil {
				xerr = e.Error
			}
			records += len(e.RR)
		}
		switch {
		case signedXfr && (xerr != nil || msgs < 3 || records < 1200):
			t.Errorf("signed AXFR: %d messages, %d records, error %v", msgs, records, xerr)
		case !signedXfr && (xerr == nil || xerr.Error() != "dns: bad xfr rcode: 5"):
			t.Errorf("unsigned AXFR with keys configured: error %v, want REFUSED", xerr)
		}
	}
}

// TestTSIGFitsUDP: a signed UDP reply fits the client's size with its TSIG
// (RFC 8945 §5.3 signs the reply as sent): an answer that fits unsigned but
// not with the TSIG comes with TC, and either way the signature verifies.
func TestTSIGFitsUDP(t *testing.T) {
	for _, alg := range []string{dns.HmacSHA1, dns.HmacSHA256, dns.HmacSHA512} {
		const name, secret = "udp.key.", "c2VjcmV0LWtleS1mb3ItZ2VvZG5zZC10ZXN0cw=="
		s := newTestServer(t, Options{TSIGKeys: []TSIGKey{{Name: name, Algorithm: alg, Secret: secret}}})
		w := s.newUDPWorker()
		full := w.respond(nil, q{id: 1, name: "big.example.com.", qtype: dns.TypeTXT, edns: true, size: 4096}.bytes(t))
		for _, size := range []int{len(full) + 10, len(full) + tsigRoom(TSIGKey{Name: name, Algorithm: alg})} {
			req := withMsg(t, q{id: 2, name: "big.example.com.", qtype: dns.TypeTXT, edns: true, size: uint16(size)}, func(m *dns.Msg) {
				m.SetTsig(name, alg, 300, time.Now().Unix())
			})
			signedReq, mac, err := dns.TsigGenerate(mustUnpack(t, req), secret, "", false)
			if err != nil {
				t.Fatal(err)
			}
			out := w.respond(nil, signedReq)
			if len(out) > size {
				t.Errorf("%s size %d: signed reply %d bytes, over the client's size", alg, size, len(out))
			}
			if err := dns.TsigVerify(out, secret, mac, false); err != nil {
				t.Errorf("%s size %d: reply does not verify: %v", alg, size, err)
			}
			m := mustUnpack(t, out)
			fits := size >= len(full)+tsigRoom(TSIGKey{Name: name, Algorithm: alg})
			if fits && len(out) != size { // tsigRoom is the TSIG's size, not more
				t.Errorf("%s size %d: signed reply %d bytes, want the whole size", alg, size, len(out))
			}
			if m.Truncated == fits || (len(m.Answer) == 10) != fits {
				t.Errorf("%s size %d: TC %v with %d answers, want the whole answer only when it fits with the TSIG (%v)", alg, size, m.Truncated, len(m.Answer), fits)
			}
		}
	}
}

func mustUnpack(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	return m
}
