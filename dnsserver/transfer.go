package dnsserver

import (
	"net/netip"

	"github.com/miekg/dns"
)

// xfrMessageSize bounds the size of one message of a zone transfer, as NSD
// does (16 kB), well under the 65535 bytes TCP framing allows.
const xfrMessageSize = 16 << 10

// transferAllowed reports whether a client at addr may transfer zones.
func (h *handler) transferAllowed(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range h.xfrAllow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// transfer answers an AXFR (or IXFR, RFC 1995 §4) over TCP from an allowed
// client with the whole zone (RFC 5936): the SOA, every record, the SOA,
// in messages of at most xfrMessageSize bytes, AA set, the question in the
// first message only. The first message is appended to dst; the others are
// left in w.xfr for the TCP loop to write. A name that is not the apex of
// one of our zones gets NOTAUTH (RFC 5936 §2.2.1).
func (w *worker) transfer(dst, msg []byte) []byte {
	q := &w.req
	name, _, err := dns.UnpackDomainName(q.qname[:q.qlen], 0)
	var rrs []dns.RR
	ok := false
	if err == nil && w.h.src != nil && q.qclass == classINET {
		if snap := w.h.src.Snapshot(); snap != nil {
			rrs, ok = snap.Transfer(name)
		}
	}
	if !ok {
		return w.errorReply(dst, msg, dns.RcodeNotAuth)
	}
	question := dns.Question{Name: name, Qtype: q.qtype, Qclass: q.qclass}
	var msgs [][]byte
	m := &dns.Msg{Compress: true}
	flush := func() bool {
		m.Id = q.id
		m.Response, m.Authoritative = true, true
		if len(msgs) == 0 {
			m.Question = []dns.Question{question}
		}
		b, err := m.Pack()
		if err != nil {
			return false
		}
		msgs = append(msgs, b)
		m = &dns.Msg{Compress: true}
		return true
	}
	for _, rr := range rrs {
		m.Answer = append(m.Answer, rr)
		if len(m.Answer) > 1 && m.Len() > xfrMessageSize {
			m.Answer = m.Answer[:len(m.Answer)-1]
			if !flush() {
				return w.errorReply(dst, msg, dns.RcodeServerFailure)
			}
			m.Answer = append(m.Answer, rr)
		}
	}
	if !flush() {
		return w.errorReply(dst, msg, dns.RcodeServerFailure)
	}
	// The question keeps the zone's case (not the client's 0x20 case):
	// compression points owners at it, and a secondary stores them.
	w.xfr = msgs[1:]
	w.ctr.query(w.h.zones.intern(name), q.qtype, rcodeIndex(dns.RcodeSuccess))
	w.ctr.transfers.Add(1)
	return append(dst, msgs[0]...)
}
