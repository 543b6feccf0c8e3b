package dnsserver

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzParseVsMiekg compares the hand-written request parser with miekg/dns
// unpacking the same bytes. Where both accept a query they must read the
// same question (the name lower-cased), EDNS presence, version, DO bit,
// payload size and NSID option. Where they disagree, the difference must be
// one of those the parser makes on purpose, following NSD:
//
//  1. shorter than a header, or QR set: dropped (no reply), whatever follows;
//  2. an opcode other than QUERY: NOTIMP, whatever follows;
//  3. FORMERR for messages miekg/dns reads without complaint: QDCOUNT other
//     than 1, records in the answer section (or the authority section, but
//     for IXFR), a compression pointer in the question name, an additional
//     record other than OPT and a final TSIG, a second OPT, an OPT whose
//     owner is not the root, a nonzero RCODE in the query, and section
//     counts larger than the records present and a question without its
//     type and class (miekg/dns forgives those);
//  4. option payloads are not looked into (only NSID's presence and ECS's
//     position are noted), so an option that miekg/dns finds malformed (an
//     ECS with a bad family or prefix, a cookie of a bad length) is ignored;
//  5. bytes after the last record are ignored (miekg/dns ignores them too);
//  6. the authority records of an IXFR query (the client's SOA) are skipped
//     by their lengths, their RDATA not checked.
func FuzzParseVsMiekg(f *testing.F) {
	for _, tc := range respondCases() {
		f.Add(tc.req(f))
	}
	f.Add(q{id: 1, name: "Www.Example.COM.", qtype: dns.TypeA, edns: true, do: true, size: 4096,
		opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}.bytes(f))
	f.Add(q{id: 2, name: `a\.b\000.example.com.`, qtype: dns.TypeTXT}.bytes(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		v := r.parse(b)
		m := new(dns.Msg)
		err := m.Unpack(b)

		switch {
		case len(b) < headerLen || b[2]&0x80 != 0:
			if v != vDrop {
				t.Fatalf("short or QR set: verdict %d, want drop", v)
			}
			return
		case (b[2]>>3)&0xf != 0:
			if v != vNotImp {
				t.Fatalf("opcode %d: verdict %d, want NOTIMP", (b[2]>>3)&0xf, v)
			}
			return
		}
		if v == vDrop || v == vNotImp {
			t.Fatalf("verdict %d for a query miekg reads as %v (err %v)", v, m.MsgHdr, err)
		}
		if err != nil {
			if v == vFormErr {
				return // both refuse
			}
			if optionPayloadOnly(b) {
				return // difference 4
			}
			if r.qtype == typeIXFR && binary.BigEndian.Uint16(b[8:]) != 0 {
				return // difference 6
			}
			t.Fatalf("verdict %d, but miekg/dns: %v\n% x", v, err, b)
		}
		if v == vFormErr {
			if why := deliberateFormErr(b, m); why == "" {
				t.Fatalf("FORMERR for a message miekg/dns reads and no deliberate difference explains:\n%v\n% x", m, b)
			}
			return
		}
		// Both accept: the same question and EDNS.
		if len(m.Question) != 1 {
			t.Fatalf("verdict %d with %d questions", v, len(m.Question))
		}
		qq := m.Question[0]
		name, _, perr := dns.UnpackDomainName(r.qname[:r.qlen], 0)
		if perr != nil || name != strings.ToLower(qq.Name) && !sameWireName(name, qq.Name) {
			t.Fatalf("qname %q (%v), miekg %q", name, perr, qq.Name)
		}
		if r.qtype != qq.Qtype || r.qclass != qq.Qclass {
			t.Fatalf("qtype/qclass %d/%d, miekg %d/%d", r.qtype, r.qclass, qq.Qtype, qq.Qclass)
		}
		opt := m.IsEdns0()
		if (opt != nil) != r.edns {
			t.Fatalf("edns %v, miekg OPT %v", r.edns, opt)
		}
		if opt != nil {
			if opt.Version() != r.version || opt.Do() != r.do || opt.UDPSize() != r.bufSize {
				t.Fatalf("EDNS version %d do %v size %d, miekg %d %v %d", r.version, r.do, r.bufSize, opt.Version(), opt.Do(), opt.UDPSize())
			}
			nsid := false
			for _, o := range opt.Option {
				if o.Option() == dns.EDNS0NSID {
					nsid = true
				}
			}
			if nsid != r.nsid {
				t.Fatalf("NSID %v, miekg %v", r.nsid, nsid)
			}
		}
		if v == vSigned && m.IsTsig() == nil {
			t.Fatalf("BADKEY without a TSIG for miekg")
		}
	})
}

// sameWireName compares two presentation names by their lower-cased wire form.
func sameWireName(a, b string) bool {
	pa, pb := make([]byte, 256), make([]byte, 256)
	na, ea := dns.PackDomainName(a, pa, 0, nil, false)
	nb, eb := dns.PackDomainName(b, pb, 0, nil, false)
	return ea == nil && eb == nil && strings.EqualFold(string(pa[:na]), string(pb[:nb]))
}

// deliberateFormErr names the difference of kind 3 that makes b FORMERR
// although miekg/dns reads it as m, or "" when there is none.
func deliberateFormErr(b []byte, m *dns.Msg) string {
	qd := binary.BigEndian.Uint16(b[4:])
	an := binary.BigEndian.Uint16(b[6:])
	ns := binary.BigEndian.Uint16(b[8:])
	ar := binary.BigEndian.Uint16(b[10:])
	switch {
	case qd != 1:
		return "QDCOUNT != 1"
	case an != 0:
		return "answer records"
	case ns != 0 && (len(m.Question) == 0 || m.Question[0].Qtype != dns.TypeIXFR):
		return "authority records"
	case b[3]&0xf != 0:
		return "rcode set"
	case len(m.Question) != int(qd) || len(m.Answer) != int(an) || len(m.Ns) != int(ns) || len(m.Extra) != int(ar):
		return "counts larger than the records present"
	}
	if len(b) > headerLen && b[headerLen]&0xc0 != 0 || questionHasPointer(b) {
		return "compression pointer in the question"
	}
	if end, ok := skipName(b, headerLen); !ok || end+4 > len(b) {
		return "question cut short (miekg/dns reads a missing type and class as 0)"
	}
	opts := 0
	for i, rr := range m.Extra {
		switch rr.Header().Rrtype {
		case dns.TypeOPT:
			opts++
			if rr.Header().Name != "." {
				return "OPT owner not root"
			}
		case dns.TypeTSIG:
			if i != len(m.Extra)-1 || rr.Header().Class != dns.ClassANY || rr.Header().Ttl != 0 {
				return "TSIG not last, or not class ANY TTL 0"
			}
		default:
			return "additional record other than OPT and TSIG"
		}
	}
	if opts > 1 {
		return "more than one OPT"
	}
	for _, rr := range append(m.Answer, m.Ns...) {
		if rr.Header().Rrtype == dns.TypeOPT {
			return "OPT outside the additional section"
		}
	}
	return ""
}

func questionHasPointer(b []byte) bool {
	for off := headerLen; off < len(b); {
		l := int(b[off])
		switch {
		case l == 0:
			return false
		case l&0xc0 != 0:
			return true
		}
		off += l + 1
	}
	return false
}

// optionPayloadOnly reports whether miekg/dns accepts b once the payloads
// of the OPT's options are blanked (difference 4).
func optionPayloadOnly(b []byte) bool {
	c := append([]byte(nil), b...)
	var r request
	if r.parse(c) != vAnswer && r.parse(c) != vBadVers {
		return false
	}
	off := r.qEnd
	for off < len(c) {
		end, ok := skipName(c, off)
		if !ok || end+10 > len(c) {
			return false
		}
		typ := binary.BigEndian.Uint16(c[end:])
		rdlen := int(binary.BigEndian.Uint16(c[end+8:]))
		rd := end + 10
		if typ == typeOPT {
			for p := rd; p+4 <= rd+rdlen; {
				l := int(binary.BigEndian.Uint16(c[p+2:]))
				binary.BigEndian.PutUint16(c[p:], 65001) // a local option: opaque bytes
				p += 4 + l
			}
			break
		}
		off = rd + rdlen
	}
	return new(dns.Msg).Unpack(c) == nil
}
