package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// ioBound is how long a test client waits for a reply before failing; it
// bounds a failure, nothing waits for it to pass.
const ioBound = 10 * time.Second

var loopbacks = []netip.AddrPort{
	netip.MustParseAddrPort("127.0.0.1:0"),
	netip.MustParseAddrPort("[::1]:0"),
}

// startServer starts a server on the loopbacks and shuts it down at the
// end of the test.
func startServer(t *testing.T, o Options, simpleUDP bool) *Server {
	t.Helper()
	if o.Listen == nil {
		o.Listen = loopbacks
	}
	if o.SocketsPerAddress == 0 {
		o.SocketsPerAddress = 2
	}
	s := newTestServer(t, o)
	s.simpleUDP = simpleUDP
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioBound)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

const probeID = 0xffff

// exchangeRaw sends req and then a probe query on one connection and
// returns the reply to req, nil when req got none. Both are answered in
// order by one reader (UDP: one socket per client port; TCP: one
// connection), so whatever arrives before the probe's reply is req's.
func exchangeRaw(t *testing.T, network string, addr net.Addr, req []byte) []byte {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioBound))
	probe := q{id: probeID, name: "www.example.com.", qtype: dns.TypeA}.bytes(t)
	var reply []byte
	if network == "udp" {
		for _, m := range [][]byte{req, probe} {
			if _, err := c.Write(m); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) == probeID {
				return reply
			}
			reply = append([]byte{}, buf[:n]...)
		}
	}
	var out []byte
	for _, m := range [][]byte{req, probe} {
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatalf("write: %v", err)
	}
	for {
		var lb [2]byte
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			t.Fatalf("read: %v", err)
		}
		m := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, m); err != nil {
			t.Fatalf("read: %v", err)
		}
		if len(m) >= 2 && binary.BigEndian.Uint16(m) == probeID {
			return reply
		}
		reply = m
	}
}

// TestServeSockets runs the packet-path table over real UDP and TCP
// sockets, IPv4 and IPv6, with batched and one-by-one UDP I/O.
func TestServeSockets(t *testing.T) {
	for _, simple := range []bool{false, true} {
		name := "batched"
		if simple {
			name = "simple"
		}
		t.Run(name, func(t *testing.T) {
			full := startServer(t, Options{NSID: testNSID, Identity: `ns1 "lab"`, VersionBind: "geodnsd test"}, simple)
			bare := startServer(t, Options{}, simple)
			for i := range loopbacks {
				for _, network := range []string{"udp", "tcp"} {
					t.Run(network+loopbacks[i].Addr().String(), func(t *testing.T) {
						for _, tc := range respondCases() {
							if (network == "udp" && tc.tcp) || (network == "tcp" && tc.udp) || tc.custom != nil {
								continue
							}
							t.Run(tc.name, func(t *testing.T) {
								s := full
								if tc.bare {
									s = bare
								}
								addr := s.UDPAddrs()[i]
								if network == "tcp" {
									addr = s.TCPAddrs()[i]
								}
								check(t, exchangeRaw(t, network, addr, tc.req(t)), tc.id, tc.want)
							})
						}
					})
				}
			}
		})
	}
}

// TestClient uses miekg/dns's client as an independent implementation:
// UDP, TC and the retry over TCP, NSID and CHAOS, on both families.
func TestClient(t *testing.T) {
	s := startServer(t, Options{NSID: testNSID, Identity: "ns1"}, false)
	for i, ap := range loopbacks {
		t.Run(ap.Addr().String(), func(t *testing.T) {
			udp := &dns.Client{Net: "udp", Timeout: ioBound}
			tcp := &dns.Client{Net: "tcp", Timeout: ioBound}

			m := q{id: 100, name: "Www.Example.Com.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}.msg()
			r, _, err := udp.Exchange(m, s.UDPAddrs()[i].String())
			if err != nil {
				t.Fatalf("udp exchange: %v", err)
			}
			if len(r.Answer) != 2 || r.Answer[0].Header().Name != "Www.Example.Com." || !r.Authoritative {
				t.Errorf("udp answer %v", r)
			}
			opt := r.IsEdns0()
			if opt == nil || len(opt.Option) != 1 || opt.Option[0].(*dns.EDNS0_NSID).Nsid != "6e732d746573742d31" {
				t.Errorf("NSID: %v", opt)
			}

			big := q{id: 101, name: "big.example.com.", qtype: dns.TypeTXT}.msg()
			r, _, err = udp.Exchange(big, s.UDPAddrs()[i].String())
			if err != nil {
				t.Fatalf("udp exchange: %v", err)
			}
			if !r.Truncated || len(r.Answer) != 0 {
				t.Errorf("big over UDP: TC %v, %d answers", r.Truncated, len(r.Answer))
			}
			r, _, err = tcp.Exchange(big, s.TCPAddrs()[i].String())
			if err != nil {
				t.Fatalf("tcp exchange: %v", err)
			}
			if r.Truncated || len(r.Answer) != 10 {
				t.Errorf("big over TCP: TC %v, %d answers", r.Truncated, len(r.Answer))
			}

			ch := q{id: 102, name: "id.server.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}.msg()
			r, _, err = udp.Exchange(ch, s.UDPAddrs()[i].String())
			if err != nil {
				t.Fatalf("chaos: %v", err)
			}
			if len(r.Answer) != 1 || r.Answer[0].(*dns.TXT).Txt[0] != "ns1" {
				t.Errorf("chaos answer %v", r.Answer)
			}
		})
	}
}

// TestPipelined: many queries written at once on one connection are all
// answered, in order.
func TestPipelined(t *testing.T) {
	s := startServer(t, Options{}, false)
	c, err := net.Dial("tcp", s.TCPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioBound))
	const n = 50
	var out []byte
	for i := range n {
		name := "www.example.com."
		if i%3 == 1 {
			name = "huge.example.com." // a large reply among small ones
		}
		m := q{id: uint16(i), name: name, qtype: dns.TypeA}.bytes(t)
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var lb [2]byte
		if _, err := io.ReadFull(c, lb[:]); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		m := make([]byte, binary.BigEndian.Uint16(lb[:]))
		if _, err := io.ReadFull(c, m); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if id := binary.BigEndian.Uint16(m); id != uint16(i) {
			t.Fatalf("reply %d has id %d", i, id)
		}
	}
}

// expectClosed reads from c and wants the server to have closed it.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(ioBound))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

func TestTCPIdleTimeout(t *testing.T) {
	s := startServer(t, Options{TCPIdleTimeout: 100 * time.Millisecond}, false)
	c, err := net.Dial("tcp", s.TCPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c)
}

// TestTCPSlowloris: a message that starts but does not finish arriving is
// cut off by the per-read deadline.
func TestTCPSlowloris(t *testing.T) {
	s := startServer(t, Options{TCPIdleTimeout: 200 * time.Millisecond}, false)
	c, err := net.Dial("tcp", s.TCPAddrs()[1].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 40, 0, 1, 0}); err != nil { // 40 bytes announced, 3 sent
		t.Fatal(err)
	}
	expectClosed(t, c)
}

// TestTCPZeroLength: a zero message length ends the connection (as NSD
// and Knot).
func TestTCPZeroLength(t *testing.T) {
	s := startServer(t, Options{}, false)
	c, err := net.Dial("tcp", s.TCPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0}); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
}

func TestTCPConnectionLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startServer(t, Options{TCPMaxConnections: 2, Registry: reg}, false)
	addr := s.TCPAddrs()[0]
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for range 2 { // both answered: both accepted and counted
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		reply := exchangeOn(t, c, q{id: 5, name: "www.example.com.", qtype: dns.TypeA}.bytes(t))
		check(t, reply, 5, want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
	}
	if got := metricValue(t, reg, "geodnsd_dns_tcp_connections", nil); got != 2 {
		t.Errorf("tcp_connections %v, want 2", got)
	}
	// the third is closed at once (with a reset: Dial may already see it)
	if c, err := net.Dial("tcp", addr.String()); err == nil {
		defer c.Close()
		expectClosed(t, c)
	}
	if got := metricValue(t, reg, "geodnsd_dns_tcp_rejected_total", nil); got != 1 {
		t.Errorf("tcp_rejected_total %v, want 1", got)
	}
	// a slot freed is a slot usable
	open[0].Close()
	open = open[1:]
	deadline := time.Now().Add(ioBound)
	for metricValue(t, reg, "geodnsd_dns_tcp_connections", nil) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("closed connection still counted")
		}
		runtime.Gosched()
	}
	c2, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	exchangeOn(t, c2, q{id: 6, name: "www.example.com.", qtype: dns.TypeA}.bytes(t))
}

func exchangeOn(t *testing.T, c net.Conn, req []byte) []byte {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(ioBound))
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(req))), req...)); err != nil {
		t.Fatal(err)
	}
	var lb [2]byte
	if _, err := io.ReadFull(c, lb[:]); err != nil {
		t.Fatal(err)
	}
	m := make([]byte, binary.BigEndian.Uint16(lb[:]))
	if _, err := io.ReadFull(c, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitGoroutines waits, bounded, for the goroutine count to come back to
// base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(ioBound)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

// TestShutdown: with an idle TCP connection open (default 10 s idle
// timeout), Shutdown returns well within its context, closes the
// connection and leaves no goroutine behind.
func TestShutdown(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expired bool // context already done: everything is closed at once
	}{{"graceful", false}, {"context expired", true}} {
		t.Run(tc.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			s := newTestServer(t, Options{Listen: loopbacks, SocketsPerAddress: 2})
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			idle, err := net.Dial("tcp", s.TCPAddrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			exchangeOn(t, idle, q{id: 1, name: "www.example.com.", qtype: dns.TypeA}.bytes(t)) // accepted and served
			ctx, cancel := context.WithTimeout(context.Background(), ioBound)
			if tc.expired {
				cancel()
			}
			defer cancel()
			err = s.Shutdown(ctx)
			if tc.expired != (err != nil) {
				t.Errorf("Shutdown: %v", err)
			}
			expectClosed(t, idle)
			idle.Close()
			waitGoroutines(t, base)
			if err := s.Start(); err == nil {
				t.Error("Start after Shutdown succeeded")
			}
			if err := s.Shutdown(context.Background()); err != nil {
				t.Errorf("second Shutdown: %v", err)
			}
		})
	}
}

// TestStartBindError: a port taken for TCP fails Start, and every socket
// Start opened is closed again.
func TestStartBindError(t *testing.T) {
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	s := newTestServer(t, Options{Listen: []netip.AddrPort{netip.MustParseAddrPort("[::1]:0"), ap}, SocketsPerAddress: 2})
	if err := s.Start(); err == nil {
		t.Fatal("Start succeeded on a taken port")
	} else if !strings.Contains(err.Error(), ap.String()) {
		t.Errorf("error %q does not name %v", err, ap)
	}
	// the UDP sockets on that port (SO_REUSEPORT) were closed: a socket
	// without SO_REUSEPORT can bind it
	u, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		t.Fatalf("UDP port still held after failed Start: %v", err)
	}
	u.Close()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after failed Start: %v", err)
	}
}

// metricValue sums the samples of a metric whose labels include labels.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// TestMetrics: the counters add up over every reader, and the names pass
// promlint.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startServer(t, Options{Registry: reg}, false)
	for i := range 4 {
		exchangeRaw(t, "udp", s.UDPAddrs()[i%2], q{id: 1, name: "www.example.com.", qtype: dns.TypeA}.bytes(t))
	}
	exchangeRaw(t, "udp", s.UDPAddrs()[0], q{id: 2, name: "www.example.org.", qtype: dns.TypeMX}.bytes(t))
	exchangeRaw(t, "udp", s.UDPAddrs()[0], q{id: 3, name: "big.example.com.", qtype: dns.TypeTXT}.bytes(t))
	exchangeRaw(t, "udp", s.UDPAddrs()[0], header(4, 0, 2, 0, 0, 0))
	exchangeRaw(t, "tcp", s.TCPAddrs()[0], q{id: 5, name: "www.example.com.", qtype: 65000}.bytes(t))

	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		// 4 queries, 7 probes
		{"geodnsd_dns_queries_total", map[string]string{"zone": "example.com.", "qtype": "A", "rcode": "NOERROR", "proto": "udp"}, 11},
		{"geodnsd_dns_queries_total", map[string]string{"zone": "example.com.", "qtype": "A", "rcode": "NOERROR", "proto": "tcp"}, 1},
		{"geodnsd_dns_queries_total", map[string]string{"zone": "none", "qtype": "MX", "rcode": "REFUSED", "proto": "udp"}, 1},
		{"geodnsd_dns_queries_total", map[string]string{"zone": "none", "qtype": "other", "rcode": "FORMERR", "proto": "udp"}, 1},
		{"geodnsd_dns_queries_total", map[string]string{"zone": "example.com.", "qtype": "other", "rcode": "NOERROR", "proto": "tcp"}, 1},
		{"geodnsd_dns_responses_truncated_total", nil, 1},
		{"geodnsd_dns_malformed_total", nil, 1},
		{"geodnsd_dns_panics_total", nil, 0},
		{"geodnsd_dns_request_duration_seconds", map[string]string{"proto": "udp"}, 14},
		{"geodnsd_dns_request_duration_seconds", map[string]string{"proto": "tcp"}, 2},
	} {
		// A reader observes the duration of a batch after sending its
		// replies: the client may be faster than the count. Wait for it.
		deadline := time.Now().Add(5 * time.Second)
		got := metricValue(t, reg, tc.name, tc.labels)
		for got != tc.want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // poll interval, bounded by the deadline
			got = metricValue(t, reg, tc.name, tc.labels)
		}
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestWildcardSource: a server bound to 0.0.0.0 answers a query sent to
// 127.0.0.2 from 127.0.0.2 (IP_PKTINFO); a connected client socket drops a
// reply from any other address.
func TestWildcardSource(t *testing.T) {
	s := startServer(t, Options{Listen: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:0"), netip.MustParseAddrPort("[::]:0")}}, false)
	port := s.UDPAddrs()[0].(*net.UDPAddr).Port
	for _, a := range []string{"127.0.0.2", "127.0.0.1"} {
		addr := &net.UDPAddr{IP: net.ParseIP(a), Port: port}
		check(t, exchangeRaw(t, "udp", addr, q{id: 3, name: "www.example.com.", qtype: dns.TypeA}.bytes(t)), 3,
			want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
	}
	v6 := &net.UDPAddr{IP: net.IPv6loopback, Port: s.UDPAddrs()[1].(*net.UDPAddr).Port}
	check(t, exchangeRaw(t, "udp", v6, q{id: 4, name: "www.example.com.", qtype: dns.TypeA}.bytes(t)), 4,
		want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
}

// TestUDPLoopAllocs: a cached answer through the batched UDP reader
// (recvmmsg, respond, sendmmsg) allocates nothing; the client side here
// (a connected socket's Write and Read) does not either.
func TestUDPLoopAllocs(t *testing.T) {
	s := startServer(t, Options{Listen: loopbacks[:1], SocketsPerAddress: 1}, false)
	c, err := net.Dial("udp", s.UDPAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioBound))
	req := q{id: 1, name: "www.example.com.", qtype: dns.TypeA, edns: true}.bytes(t)
	buf := make([]byte, 1500)
	var failed error
	roundTrip := func() {
		if _, err := c.Write(req); err != nil {
			failed = err
		}
		if _, err := c.Read(buf); err != nil {
			failed = err
		}
	}
	roundTrip() // fill the cache
	if n := testing.AllocsPerRun(200, roundTrip); n != 0 {
		t.Errorf("%v allocations per UDP query", n)
	}
	if failed != nil {
		t.Fatal(failed)
	}
}
