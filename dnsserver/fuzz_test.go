package dnsserver

import (
	"encoding/binary"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS: any bytes give no panic, and every reply unpacks, is a
// response, carries the query's ID and fits the UDP limit.
func FuzzServeDNS(f *testing.F) {
	for _, tc := range respondCases() {
		f.Add(tc.req(f))
	}
	f.Add(q{id: 1, name: "*.example.com.", qtype: dns.TypeANY, edns: true, do: true}.bytes(f))
	f.Add(q{id: 2, name: "alias.example.com.", qtype: dns.TypeCNAME, qclass: dns.ClassANY}.bytes(f))
	f.Add(q{id: 3, name: `a\.b\000.example.com.`, qtype: dns.TypeA}.bytes(f))
	f.Add(q{id: 4, name: ".", qtype: dns.TypeNS, edns: true, size: 65535}.bytes(f))
	f.Add(header(5, 0, 1, 0, 0, 0))
	f.Add(header(6, 0, 0xffff, 0xffff, 0xffff, 0xffff))

	s := newTestServer(f, Options{NSID: testNSID, Identity: "ns1", VersionBind: "v"})
	udp := s.newUDPWorker()
	tcp := s.h.newWorker(protoTCP, nil, s.tcpCtr)
	f.Fuzz(func(t *testing.T, req []byte) {
		for _, w := range []*worker{udp, tcp} {
			out := w.respond(nil, req)
			if w.ctr.panics.Load() != 0 {
				t.Fatalf("%v: panic recovered", w.proto)
			}
			if len(out) == 0 {
				continue
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("%v: reply does not unpack: %v\nreq % x\nreply % x", w.proto, err, req, out)
			}
			if m.Id != binary.BigEndian.Uint16(req) {
				t.Fatalf("%v: reply id %d, query id %d", w.proto, m.Id, binary.BigEndian.Uint16(req))
			}
			if !m.Response {
				t.Fatalf("%v: QR clear", w.proto)
			}
			if w.proto == protoUDP {
				if limit := max(512, w.req.udpLimit(s.h.udpSize)); len(out) > limit {
					t.Fatalf("udp reply %d bytes over %d", len(out), limit)
				}
			}
		}
	})
}
