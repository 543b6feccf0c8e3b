package dnsserver

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestRRL: per client network and second, Rate full responses, then every
// Slip-th truncated and the rest dropped; other networks, allowed networks
// and the next second are not affected (a fake clock).
func TestRRL(t *testing.T) {
	s := newTestServer(t, Options{RRL: RRL{Rate: 5, Slip: 2, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	now := time.Unix(1_700_000_000, 0)
	s.h.rrl.now = func() time.Time { return now }
	w := s.newUDPWorker()
	req := q{id: 7, name: "www.example.com.", qtype: dns.TypeA, edns: true}.bytes(t)
	kinds := func(from string, n int) (full, tc, dropped int) {
		t.Helper()
		for range n {
			out := w.respondUDP(nil, req, netip.MustParseAddr(from))
			switch {
			case len(out) == 0:
				dropped++
			case out[2]&(flagTC>>8) != 0:
				m := new(dns.Msg)
				if err := m.Unpack(out); err != nil {
					t.Fatal(err)
				}
				if len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 || len(m.Question) != 1 || m.Id != 7 {
					t.Fatalf("slipped reply is not a bare TC reply:\n%v", m)
				}
				tc++
			default:
				full++
			}
		}
		return
	}
	if full, tc, dropped := kinds("198.51.100.7", 25); full != 5 || tc != 10 || dropped != 10 {
		t.Errorf("flooding network: %d full, %d TC, %d dropped; want 5, 10, 10", full, tc, dropped)
	}
	if full, _, _ := kinds("198.51.100.200", 1); full != 0 {
		t.Errorf("same /24: %d full, want 0 (its budget is spent)", full)
	}
	if full, _, _ := kinds("203.0.113.9", 5); full != 5 {
		t.Errorf("another network: %d full of 5", full)
	}
	if full, _, _ := kinds("192.0.2.1", 50); full != 50 {
		t.Errorf("allowed network: %d full of 50", full)
	}
	if full, _, _ := kinds("2001:db8:0:1::1", 5); full != 5 {
		t.Errorf("IPv6 network: %d full of 5", full)
	}
	if full, _, _ := kinds("2001:db8:0:1:ffff::2", 1); full != 0 {
		t.Errorf("same /56: %d full, want 0", full)
	}
	now = now.Add(time.Second)
	if full, _, _ := kinds("198.51.100.7", 5); full != 5 {
		t.Errorf("next second: %d full of 5", full)
	}
	tcp := s.h.newWorker(protoTCP, nil, s.tcpCtr)
	if out := tcp.respondFrom(nil, req, netip.MustParseAddr("198.51.100.7")); len(out) == 0 {
		t.Error("TCP is rate limited")
	}
}

// TestRRLOverUDP: a flood from one client over real UDP gets at most its
// rate of full answers per second (plus truncated slips), counted in the
// metrics; a client of another network is answered meanwhile.
func TestRRLOverUDP(t *testing.T) {
	reg := prometheus.NewRegistry()
	const rate, slip, sent = 20, 2, 300
	s := startServer(t, Options{RRL: RRL{Rate: rate, Slip: slip}, Registry: reg,
		Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}, false)
	addr := s.UDPAddrs()[0].(*net.UDPAddr)
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	for i := range sent {
		if _, err := c.Write(q{id: uint16(i), name: "www.example.com.", qtype: dns.TypeA}.bytes(t)); err != nil {
			t.Fatal(err)
		}
	}
	full, tc := 0, 0
	buf := make([]byte, 2048)
	for {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			break // no more replies: the rest were dropped
		}
		if buf[2]&(flagTC>>8) != 0 {
			tc++
		} else if n > 0 {
			full++
		}
	}
	secs := int(time.Since(start).Seconds()) + 2 // windows the flood can have touched
	if full > rate*secs || full < rate {
		t.Errorf("%d full answers to %d queries in at most %d one-second windows; want %d..%d", full, sent, secs, rate, rate*secs)
	}
	limited := sent - full
	if tc < limited/slip-secs || tc > limited/slip+secs {
		t.Errorf("%d truncated answers for %d limited responses, want about 1 in %d", tc, limited, slip)
	}
	if d, sl := metricValue(t, reg, "geodnsd_dns_rrl_dropped_total", nil), metricValue(t, reg, "geodnsd_dns_rrl_slipped_total", nil); int(d+sl) != limited || int(sl) != tc {
		t.Errorf("metrics: dropped %v slipped %v; want %d limited, %d slipped", d, sl, limited, tc)
	}
	if tr := metricValue(t, reg, "geodnsd_dns_responses_truncated_total", nil); int(tr) != tc {
		t.Errorf("geodnsd_dns_responses_truncated_total %v; want the %d slipped replies sent with TC", tr, tc)
	}
}

// BenchmarkRRLFlood: response bytes against query bytes for a spoofed flood
// from one network, with RRL (rate 10, slip 2) and without.
func BenchmarkRRLFlood(b *testing.B) {
	for _, tc := range []struct {
		name string
		rrl  RRL
	}{{"off", RRL{}}, {"rate10-slip2", RRL{Rate: 10, Slip: 2}}} {
		b.Run(tc.name, func(b *testing.B) {
			s := newTestServer(b, Options{RRL: tc.rrl})
			w := s.newUDPWorker()
			req := q{id: 1, name: "big.example.com.", qtype: dns.TypeTXT, edns: true, size: 4096}.bytes(b)
			from := netip.MustParseAddr("198.51.100.7")
			out := make([]byte, 0, 4096)
			var in, resp int
			b.ReportAllocs()
			for b.Loop() {
				out = w.respondUDP(out[:0], req, from)
				in += len(req)
				resp += len(out)
			}
			b.ReportMetric(float64(resp)/float64(in), "resp-bytes/query-byte")
		})
	}
}

// TestTruncateKeepOPT: a reply cut for a way out too small keeps its
// header, question and OPT (wherever the OPT was among the additional
// records), with TC; without an OPT it is truncate's cut.
func TestTruncateKeepOPT(t *testing.T) {
	base := func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion("huge.example.com.", dns.TypeTXT)
		m.Response, m.Authoritative, m.Id = true, true, 7
		for range 3 {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: "huge.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"x"}})
		}
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns1.example.com."}}
		m.Extra = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "ns1.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		return m
	}
	for _, tc := range []struct {
		name   string
		edns   bool
		wantAR int
	}{{"with OPT", true, 1}, {"without OPT", false, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			if tc.edns {
				m.SetEdns0(4096, true)
				// the OPT between two A records, not last
				m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: "ns2.example.com.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 2)})
			}
			raw, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			out := new(dns.Msg)
			cut, hadTC := truncateKeepOPT(raw)
			if hadTC {
				t.Fatal("hadTC for a reply built without TC")
			}
			if err := out.Unpack(cut); err != nil {
				t.Fatalf("unpack: %v", err)
			}
			if !out.Truncated || out.Id != 7 || len(out.Question) != 1 || out.Question[0].Name != "huge.example.com." ||
				len(out.Answer) != 0 || len(out.Ns) != 0 || len(out.Extra) != tc.wantAR {
				t.Fatalf("got %v", out)
			}
			if tc.edns {
				opt := out.IsEdns0()
				if opt == nil || opt.UDPSize() != 4096 || !opt.Do() {
					t.Fatalf("OPT %v, want size 4096 with DO", opt)
				}
			}
		})
	}
	m := base()
	m.Truncated = true
	raw, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	if _, hadTC := truncateKeepOPT(raw); !hadTC {
		t.Fatal("a reply built with TC: want hadTC")
	}
	if cut, _ := truncateKeepOPT([]byte{1, 2, 3}); findOPT([]byte{0, 7, 0x84, 0, 0, 1}) != -1 || len(cut) != 0 {
		t.Fatal("a message shorter than a header: want no OPT and nothing")
	}
}
