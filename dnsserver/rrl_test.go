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
