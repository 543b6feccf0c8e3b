package dnsserver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// Packet-path benchmarks: bytes in, bytes out, no sockets.
//
//	go test -run '^$' -bench 'Serve' -benchmem ./dnsserver/

func benchRespond(b *testing.B, w *worker, x q) {
	req := x.bytes(b)
	out := make([]byte, 0, 1232)
	if len(w.respond(out, req)) == 0 {
		b.Fatal("no reply")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	b.ResetTimer()
	for b.Loop() {
		w.respond(out, req)
	}
}

// BenchmarkServeCached: a cache hit (parse, lookup, copy, patch, count).
func BenchmarkServeCached(b *testing.B) {
	for _, bc := range []struct {
		name string
		q    q
	}{
		{"A", q{id: 1, name: "wWw.example.com.", qtype: dns.TypeA, rd: true}},
		{"A_EDNS_DO", q{id: 1, name: "www.example.com.", qtype: dns.TypeA, edns: true, do: true}},
		{"NXDOMAIN", q{id: 1, name: "nothere.example.com.", qtype: dns.TypeA, edns: true}},
		{"MX_additional", q{id: 1, name: "manymx.example.com.", qtype: dns.TypeMX, edns: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestServer(b, Options{})
			benchRespond(b, s.newUDPWorker(), bc.q)
		})
	}
}

// BenchmarkServeMiss: no cache: Lookup, build, pack, fit every time.
func BenchmarkServeMiss(b *testing.B) {
	for _, bc := range []struct {
		name string
		q    q
	}{
		{"A", q{id: 1, name: "www.example.com.", qtype: dns.TypeA, rd: true}},
		{"NXDOMAIN", q{id: 1, name: "nothere.example.com.", qtype: dns.TypeA, edns: true}},
		{"truncated", q{id: 1, name: "big.example.com.", qtype: dns.TypeTXT}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestServer(b, Options{})
			w := s.h.newWorker(protoUDP, nil, &counters{proto: protoUDP})
			benchRespond(b, w, bc.q)
		})
	}
}

// BenchmarkServeFormErr: a malformed query (two questions).
func BenchmarkServeFormErr(b *testing.B) {
	s := newTestServer(b, Options{})
	w := s.newUDPWorker()
	req := cat(header(1, 0, 2, 0, 0, 0), wwwQuestion, wwwQuestion)
	out := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		w.respond(out, req)
	}
}

// BenchmarkServeServiceCached: a cached service answer with ECS from
// rotating subnets: parse and check ECS, GeoIP2 lookup, route match, cache
// hit, patch ID, case and ECS scope. 0 allocs/op is the goal.
func BenchmarkServeServiceCached(b *testing.B) {
	s := newTestServer(b, Options{Source: newServiceStore(b)})
	w := s.newUDPWorker()
	var reqs [][]byte
	for _, p := range []string{"2.2.3.0/24", "81.2.69.142/32", "216.160.83.0/24", "89.160.20.112/28", "2a02:ff80::/48", "175.16.199.0/24"} {
		reqs = append(reqs, q{id: 1, name: "Cas.example.org.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{ecs(p)}}.bytes(b))
	}
	from := netip.MustParseAddr("198.51.100.1")
	out := make([]byte, 0, 1232)
	for _, r := range reqs {
		if len(w.respondFrom(out, r, from)) == 0 {
			b.Fatal("no reply")
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.respondFrom(out, reqs[i%len(reqs)], from)
		i++
	}
}
