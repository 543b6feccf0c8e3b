package dnsserver

import (
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
