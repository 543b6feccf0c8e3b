package dnsserver

import (
	"encoding/binary"
	"net/netip"
)

// Wire constants used by the hand parser and the hand-built replies.
const (
	headerLen  = 12
	maxNameLen = 255 // wire length of a domain name, root label included

	typeOPT  = 41
	typeIXFR = 251
	typeAXFR = 252
	typeTXT  = 16
	typeTSIG = 250

	classANY = 255

	classINET  = 1
	classCHAOS = 3

	optNSID = 3
	optECS  = 8
	optEDE  = 15

	// Header flag bits (second 16-bit word).
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4

	opcodeShift = 11
	opcodeMask  = 0xf
)

// verdict is what the parser decided about a request.
type verdict uint8

const (
	vAnswer  verdict = iota // a well-formed QUERY with one question
	vDrop                   // no reply at all (short packet, QR set)
	vFormErr                // FORMERR
	vNotImp                 // NOTIMP (opcode other than QUERY)
	vBadVers                // EDNS version > 0
	vSigned                 // a final TSIG: verified, then answered signed or NOTAUTH (tsig.go)
)

// request is a parsed query. It is a scratch value owned by one worker and
// reused for every packet: parse fills every field it reads.
type request struct {
	id    uint16
	flags uint16

	// hasQ: exactly one question, parsed. The question is wire[12:qEnd]
	// as the client sent it; qname holds it lower-cased.
	hasQ   bool
	qEnd   int
	qlen   int // wire length of the qname
	qname  [maxNameLen]byte
	qtype  uint16
	qclass uint16

	// EDNS: edns is true when the (first) OPT RR parsed.
	edns     bool
	version  uint8
	do       bool
	bufSize  uint16
	nsid     bool // NSID option present (empty, as RFC 5001 asks)
	optCount int

	// tsigOff..tsigEnd is the TSIG RR (the last additional record), 0 = none.
	tsigOff, tsigEnd int

	// EDNS Client Subnet (RFC 7871). ecsOff is the offset of the option's
	// data in the request (0 = none), ecsLen its length; ecsBad is set by
	// a malformed option (FORMERR). ecsSource is SOURCE PREFIX-LENGTH and
	// ecsAddr the address (zero bits beyond the source prefix); ecsUse
	// says the subnet locates the client: a source prefix above 0 and a
	// public unicast address (not private, loopback, link-local,
	// multicast, unspecified or IPv4-mapped).
	ecsOff    int
	ecsLen    int
	ecsBad    bool
	ecsSource uint8
	ecsAddr   netip.Addr
	ecsUse    bool
}

// ECS option families (RFC 7871 §6, IANA address family numbers).
const (
	ecsFamilyIPv4 = 1
	ecsFamilyIPv6 = 2
)

// parseECS checks the ECS option data as RFC 7871 §6 and §7.1.1 ask of a
// server: a known FAMILY, a SOURCE PREFIX-LENGTH within the family, SCOPE
// PREFIX-LENGTH 0 (a query sets none), exactly ceil(source/8) ADDRESS
// octets and no ADDRESS bit set beyond the source prefix; anything else,
// and a second ECS option, is malformed.
func (r *request) parseECS(data []byte, off int) bool {
	if r.ecsOff != 0 || len(data) < 4 {
		return false
	}
	family := binary.BigEndian.Uint16(data)
	source, scope := data[2], data[3]
	addr := data[4:]
	var max int
	switch family {
	case ecsFamilyIPv4:
		max = 32
	case ecsFamilyIPv6:
		max = 128
	default:
		return false
	}
	if int(source) > max || scope != 0 || len(addr) != (int(source)+7)/8 {
		return false
	}
	if source%8 != 0 && addr[len(addr)-1]&(0xff>>(source%8)) != 0 {
		return false
	}
	var a netip.Addr
	if family == ecsFamilyIPv4 {
		var b [4]byte
		copy(b[:], addr)
		a = netip.AddrFrom4(b)
	} else {
		var b [16]byte
		copy(b[:], addr)
		a = netip.AddrFrom16(b)
	}
	r.ecsOff, r.ecsLen = off, len(data)
	r.ecsSource, r.ecsAddr = source, a
	// An IPv4-mapped IPv6 subnet is not used: its scope would have to be
	// counted in IPv6 bits.
	r.ecsUse = source > 0 && a.IsGlobalUnicast() && !a.IsPrivate() && !a.Is4In6()
	return true
}

// parse decodes the header, the question and the additional section of msg
// by hand, bounds-checked, without allocating. It follows NSD: short packets
// and responses are dropped; an opcode other than QUERY is NOTIMP; a query
// with a nonzero RCODE, QDCOUNT != 1, an unparseable section, records in
// the answer or authority section (authority allowed for IXFR), an OPT
// outside the additional section, more than one OPT, or any additional
// record other than OPT and a final TSIG is FORMERR. A TSIG (RFC 8945) must
// be the last record, class ANY, TTL 0; a signed query is vSigned, and
// worker.signed verifies it (NOTAUTH with BADKEY, BADSIG or BADTIME when
// it does not verify, RFC 8945 §5.2). Bytes after the
// last record are ignored, as NSD does unless built with
// STRICT_MESSAGE_PARSE.
func (r *request) parse(msg []byte) verdict {
	r.hasQ, r.edns, r.nsid = false, false, false
	r.qEnd, r.qlen, r.optCount, r.ecsOff, r.ecsLen = 0, 0, 0, 0, 0
	r.ecsBad, r.ecsUse, r.ecsSource, r.ecsAddr = false, false, 0, netip.Addr{}
	r.qtype, r.qclass, r.version, r.do, r.bufSize = 0, 0, 0, false, 0
	r.tsigOff, r.tsigEnd = 0, 0
	if len(msg) < headerLen {
		return vDrop
	}
	r.id = binary.BigEndian.Uint16(msg)
	r.flags = binary.BigEndian.Uint16(msg[2:])
	if r.flags&flagQR != 0 {
		return vDrop
	}
	qd := binary.BigEndian.Uint16(msg[4:])
	an := binary.BigEndian.Uint16(msg[6:])
	ns := binary.BigEndian.Uint16(msg[8:])
	ar := binary.BigEndian.Uint16(msg[10:])

	// The sections are walked whatever the verdict, so that an error reply
	// can carry the question and an OPT when they parse.
	ok := r.walk(msg, qd, an, ns, ar)
	if (r.flags>>opcodeShift)&opcodeMask != 0 {
		return vNotImp
	}
	if r.optCount > 1 {
		r.edns = false // which OPT would we answer? (RFC 6891 §6.1.1; NSD sends none)
	}
	if qd > 1 {
		// As NSD: a message with several questions is not looked into;
		// the reply is a bare header with QR, the opcode and FORMERR.
		r.flags &^= flagRD | flagCD
		r.edns = false
	}
	if !ok || qd != 1 || r.flags&0xf != 0 {
		return vFormErr
	}
	if an != 0 || (ns != 0 && r.qtype != typeIXFR) {
		return vFormErr
	}
	if r.edns && r.version != 0 {
		return vBadVers
	}
	if r.ecsBad {
		return vFormErr // RFC 7871 §7.1.1
	}
	if r.tsigOff != 0 {
		return vSigned
	}
	return vAnswer
}

// walk parses every section; it reports false at the first problem, leaving
// what parsed before it (question, OPT) in r.
func (r *request) walk(msg []byte, qd, an, ns, ar uint16) bool {
	off := headerLen
	if qd > 0 {
		end, ok := r.parseQuestion(msg)
		if !ok {
			return false
		}
		if qd == 1 {
			r.hasQ = true
			r.qEnd = end
		}
		off = end
	}
	for i := 1; i < int(qd); i++ {
		end, ok := skipName(msg, off)
		if !ok || end+4 > len(msg) {
			return false
		}
		off = end + 4
	}
	for i := 0; i < int(an)+int(ns); i++ {
		var typ uint16
		var ok bool
		off, typ, ok = skipRR(msg, off)
		if !ok || typ == typeOPT {
			return false
		}
	}
	for i := 0; i < int(ar); i++ {
		start := off
		var typ uint16
		var ok bool
		off, typ, ok = skipRR(msg, off)
		if ok && typ == typeTSIG && i == int(ar)-1 && tsigShape(msg, start) {
			r.tsigOff, r.tsigEnd = start, off
			continue
		}
		if !ok || typ != typeOPT {
			// SIG(0) is not supported: like any other record in the
			// additional section of a query (and a TSIG that is not
			// last, RFC 8945 §5.1), it is FORMERR.
			return false
		}
		r.optCount++
		if r.optCount > 1 || !r.parseOPT(msg, start, off) {
			return false
		}
	}
	return true
}

// parseQuestion parses the first question at offset 12: the name label by
// label (no compression pointer, no extended label type, at most 255
// bytes), lower-cased into r.qname, then type and class.
func (r *request) parseQuestion(msg []byte) (int, bool) {
	off := headerLen
	n := 0
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		if l&0xc0 != 0 {
			return 0, false
		}
		if n+l+1 > maxNameLen || off+l+1 > len(msg) {
			return 0, false
		}
		r.qname[n] = byte(l)
		for i := 1; i <= l; i++ {
			c := msg[off+i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			r.qname[n+i] = c
		}
		n += l + 1
		off += l + 1
		if l == 0 {
			break
		}
	}
	if off+4 > len(msg) {
		return 0, false
	}
	r.qlen = n
	r.qtype = binary.BigEndian.Uint16(msg[off:])
	r.qclass = binary.BigEndian.Uint16(msg[off+2:])
	return off + 4, true
}

// tsigShape checks the TSIG RR at off (already bounds-checked): class ANY
// and TTL 0 (RFC 8945 §4.2).
func tsigShape(msg []byte, off int) bool {
	off, ok := skipName(msg, off)
	if !ok {
		return false
	}
	return binary.BigEndian.Uint16(msg[off+2:]) == classANY && binary.BigEndian.Uint32(msg[off+4:]) == 0
}

// skipName skips a name that may end in a compression pointer.
func skipName(msg []byte, off int) (int, bool) {
	for n := 0; n <= maxNameLen; {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0x00:
			if l == 0 {
				return off + 1, true
			}
			n += l + 1
			off += l + 1
		case 0xc0:
			if off+2 > len(msg) {
				return 0, false
			}
			return off + 2, true
		default:
			return 0, false
		}
	}
	return 0, false
}

// skipRR skips one resource record and returns its type.
func skipRR(msg []byte, off int) (int, uint16, bool) {
	off, ok := skipName(msg, off)
	if !ok || off+10 > len(msg) {
		return 0, 0, false
	}
	typ := binary.BigEndian.Uint16(msg[off:])
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	off += 10
	if off+rdlen > len(msg) {
		return 0, 0, false
	}
	return off + rdlen, typ, true
}

// parseOPT parses the OPT RR in msg[start:end] (already bounds-checked by
// skipRR). The owner must be the root; the options must fill the RDATA
// exactly. Only NSID and ECS are noted; other options are ignored.
func (r *request) parseOPT(msg []byte, start, end int) bool {
	if msg[start] != 0 {
		return false
	}
	p := start + 1 // type
	size := binary.BigEndian.Uint16(msg[p+2:])
	ttl := binary.BigEndian.Uint32(msg[p+4:])
	rd := p + 10
	for rd < end {
		if rd+4 > end {
			return false
		}
		code := binary.BigEndian.Uint16(msg[rd:])
		l := int(binary.BigEndian.Uint16(msg[rd+2:]))
		rd += 4
		if rd+l > end {
			return false
		}
		switch code {
		case optNSID:
			r.nsid = true
		case optECS:
			if !r.parseECS(msg[rd:rd+l], rd) {
				r.ecsBad = true
			}
		}
		rd += l
	}
	r.edns = true
	r.bufSize = size
	r.version = uint8(ttl >> 16)
	r.do = ttl&(1<<15) != 0
	return true
}

// udpLimit is the largest UDP reply this request may get: 512 without
// EDNS, else the client's size clamped to [512, ours].
func (r *request) udpLimit(ours int) int {
	if !r.edns {
		return minUDPLimit
	}
	n := max(int(r.bufSize), minUDPLimit)
	return min(n, ours)
}

// minUDPLimit is the UDP payload every client takes (RFC 1035 §4.2.1; an
// EDNS size below it counts as it, RFC 6891 §6.2.5).
const minUDPLimit = 512
