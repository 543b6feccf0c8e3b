package dnsserver

import (
	"encoding/binary"
	"net/netip"
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

// FuzzServeService: FuzzServeDNS's rules for a zone with a geo-routed
// service, any ECS option, and any IPv4 source address; an ECS option
// echoed keeps the query's family, source prefix and address, with a scope
// no longer than the source prefix.
func FuzzServeService(f *testing.F) {
	for i, c := range serviceCases() {
		m := c.query(uint16(i))
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint32(0xd8a05338)) // 216.160.83.56
	}
	s := newTestServer(f, Options{Source: newServiceStore(f)})
	udp := s.newUDPWorker()
	tcp := s.h.newWorker(protoTCP, nil, s.tcpCtr)
	f.Fuzz(func(t *testing.T, req []byte, src uint32) {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], src)
		from := netip.AddrFrom4(a)
		for _, w := range []*worker{udp, tcp} {
			out := w.respondFrom(nil, req, from)
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
			if !m.Response || m.Id != binary.BigEndian.Uint16(req) {
				t.Fatalf("%v: QR %v id %d", w.proto, m.Response, m.Id)
			}
			if w.proto == protoUDP {
				if limit := max(512, w.req.udpLimit(s.h.udpSize)); len(out) > limit {
					t.Fatalf("udp reply %d bytes over %d", len(out), limit)
				}
			}
			if o := m.IsEdns0(); o != nil {
				for _, opt := range o.Option {
					e, ok := opt.(*dns.EDNS0_SUBNET)
					if !ok {
						continue
					}
					if !w.req.hasQ || w.req.ecsOff == 0 || e.SourceNetmask != w.req.ecsSource || e.SourceScope > e.SourceNetmask {
						t.Fatalf("%v: ecs %v for source /%d", w.proto, e, w.req.ecsSource)
					}
				}
			}
		}
	})
}
