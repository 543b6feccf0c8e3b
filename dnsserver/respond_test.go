package dnsserver

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/zones"
)

const (
	soa      = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"
	wwwA80   = "www.example.com. 300 IN A 192.0.2.80"
	wwwA81   = "www.example.com. 300 IN A 192.0.2.81"
	testNSID = "ns-test-1"
)

var (
	optPlain = &wantOPT{size: 1232}
	optDO    = &wantOPT{size: 1232, do: true}
)

// raw builders for the malformed cases

func header(id, flags, qd, an, ns, ar uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	binary.BigEndian.PutUint16(b[8:], ns)
	binary.BigEndian.PutUint16(b[10:], ar)
	return b
}

// wwwQuestion is "www.example.com. IN A" in wire form.
var wwwQuestion = []byte("\x03www\x07example\x03com\x00\x00\x01\x00\x01")

// rawOPT is an OPT RR with size 1232 and the given rdata.
func rawOPT(rdata ...byte) []byte {
	b := []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, byte(len(rdata) >> 8), byte(len(rdata))}
	return append(b, rdata...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func withMsg(t testing.TB, x q, f func(m *dns.Msg)) []byte {
	t.Helper()
	m := x.msg()
	f(m)
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("pack: %v", err)
	}
	return b
}

type respondCase struct {
	name   string
	bare   bool // server without NSID, Identity, VersionBind
	tcp    bool
	udp    bool // UDP only: the TCP answer differs
	req    func(t testing.TB) []byte
	id     uint16
	want   want
	custom func(t *testing.T, m *dns.Msg, raw []byte) // extra checks; want.extra is skipped when set
}

func query(x q) func(testing.TB) []byte {
	return func(t testing.TB) []byte { return x.bytes(t) }
}

func rawReq(b []byte) func(testing.TB) []byte {
	return func(testing.TB) []byte { return b }
}

var txtRecords = func(owner string, n int, fill string) []string {
	var s []string
	for i := range n {
		s = append(s, owner+` 3600 IN TXT "`+twoDigits(i)+" "+strings.Repeat(fill, 60)+`"`)
	}
	return s
}

func twoDigits(i int) string { return string([]byte{byte('0' + i/10), byte('0' + i%10)}) }

func respondCases() []respondCase {
	deleg := []string{}
	glue := []string{}
	for i := 1; i <= 8; i++ {
		n := "ns" + string(rune('0'+i)) + ".deleg.example.com."
		deleg = append(deleg, "deleg.example.com. 3600 IN NS "+n)
		glue = append(glue, n+" 3600 IN A 192.0.2.10"+string(rune('0'+i)), n+" 3600 IN AAAA 2001:db8::10"+string(rune('0'+i)))
	}
	manyMX := []string{}
	for i := 1; i <= 10; i++ {
		manyMX = append(manyMX, "manymx.example.com. 3600 IN MX 10 mx"+itoa(i)+".example.com.")
	}
	return []respondCase{
		// header rules and ordinary answers
		{name: "A with EDNS and RD", id: 1, req: query(q{id: 1, name: "www.example.com.", qtype: dns.TypeA, rd: true, edns: true}),
			want: want{flags: "qr aa rd", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}, opt: optPlain}},
		{name: "no EDNS no OPT, RD clear", id: 2, req: query(q{id: 2, name: "www.example.com.", qtype: dns.TypeA}),
			want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}}},
		{name: "CD copied, AD and RA never", id: 3, req: query(q{id: 3, name: "www.example.com.", qtype: dns.TypeA, cd: true, ad: true}),
			want: want{flags: "qr aa cd", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}}},
		{name: "DO echoed", id: 4, req: query(q{id: 4, name: "www.example.com.", qtype: dns.TypeA, edns: true, do: true, size: 4096}),
			want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}, opt: optDO}},
		{name: "NSID", id: 5, req: query(q{id: 5, name: "www.example.com.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}),
			want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}, opt: &wantOPT{size: 1232, nsid: testNSID, options: 1}}},
		{name: "NSID asked, none configured", bare: true, id: 6, req: query(q{id: 6, name: "www.example.com.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}),
			want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}, opt: optPlain}},
		{name: "unknown option and cookie ignored", id: 7, req: query(q{id: 7, name: "www.example.com.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{
			&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}}, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}}),
			want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}, opt: optPlain}},
		{name: "ECS ignored", id: 8, req: query(q{id: 8, name: "www.example.com.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{
			&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}}}}),
			want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}, opt: optPlain}},
		{name: "NXDOMAIN with SOA", id: 9, req: query(q{id: 9, name: "nothere.example.com.", qtype: dns.TypeA, rd: true}),
			want: want{rcode: 3, hdrRcode: 3, flags: "qr aa rd", question: "nothere.example.com. IN A", ns: []string{soa}}},
		{name: "NODATA with SOA", id: 10, req: query(q{id: 10, name: "www.example.com.", qtype: dns.TypeTXT}),
			want: want{flags: "qr aa", question: "www.example.com. IN TXT", ns: []string{soa}}},
		{name: "REFUSED outside our zones: EDE 20", id: 11, req: query(q{id: 11, name: "www.example.org.", qtype: dns.TypeA, rd: true, edns: true}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr rd", question: "www.example.org. IN A", opt: &wantOPT{size: 1232, options: 1, ede: 20}}},
		{name: "REFUSED outside our zones, with NSID: EDE 20 after NSID", id: 12, req: query(q{id: 12, name: "www.example.org.", qtype: dns.TypeA, edns: true, opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "www.example.org. IN A", opt: &wantOPT{size: 1232, options: 2, ede: 20, nsid: testNSID}}},
		{name: "CNAME", id: 12, req: query(q{id: 12, name: "alias.example.com.", qtype: dns.TypeA}),
			want: want{flags: "qr aa", question: "alias.example.com. IN A", answer: []string{"alias.example.com. 3600 IN CNAME www.example.com.", wwwA80, wwwA81}}},
		{name: "0x20 case preserved", id: 13, req: query(q{id: 13, name: "wWw.ExAmPlE.cOm.", qtype: dns.TypeA}),
			want: want{flags: "qr aa", question: "wWw.ExAmPlE.cOm. IN A", answer: []string{
				"wWw.ExAmPlE.cOm. 300 IN A 192.0.2.80", "wWw.ExAmPlE.cOm. 300 IN A 192.0.2.81"}}},
		{name: "trailing garbage ignored (as NSD)", id: 14, req: func(t testing.TB) []byte {
			return cat(q{id: 14, name: "www.example.com.", qtype: dns.TypeA}.bytes(t), []byte("garbage"))
		}, want: want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}}},
		{name: "class HS refused by zones", id: 15, req: query(q{id: 15, name: "www.example.com.", qtype: dns.TypeA, qclass: dns.ClassHESIOD}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "www.example.com. HS A"}},

		// dropped
		{name: "QR set: dropped", req: rawReq(cat(header(20, flagQR, 1, 0, 0, 0), wwwQuestion)), want: want{drop: true}},
		{name: "shorter than a header: dropped", req: rawReq([]byte{0, 21, 0, 0, 0, 1, 0, 0, 0, 0, 0}), want: want{drop: true}},
		{name: "empty: dropped", udp: true, req: rawReq(nil), want: want{drop: true}},

		// NOTIMP
		{name: "NOTIMP STATUS: RD not copied", id: 22, req: query(q{id: 22, name: "www.example.com.", qtype: dns.TypeA, opcode: dns.OpcodeStatus, rd: true, edns: true}),
			want: want{rcode: 4, hdrRcode: 4, flags: "qr", opcode: dns.OpcodeStatus, question: "www.example.com. IN A", opt: optPlain}},
		{name: "NOTIMP opcode 15 with every flag set: only QR (genreport opcodeflg)", id: 25, req: rawReq(cat(header(25, 15<<opcodeShift|0x07f0, 1, 0, 0, 0), wwwQuestion)),
			want: want{rcode: 4, hdrRcode: 4, flags: "qr", opcode: 15, question: "www.example.com. IN A"}},
		{name: "NOTIMP NOTIFY", id: 23, req: query(q{id: 23, name: "example.com.", qtype: dns.TypeSOA, opcode: dns.OpcodeNotify}),
			want: want{rcode: 4, hdrRcode: 4, flags: "qr", opcode: dns.OpcodeNotify, question: "example.com. IN SOA"}},
		{name: "NOTIMP UPDATE with records, no question echo for 0 questions", id: 24, req: rawReq(header(24, 5<<opcodeShift, 0, 0, 0, 0)),
			want: want{rcode: 4, hdrRcode: 4, flags: "qr", opcode: dns.OpcodeUpdate}},

		// FORMERR: header (and OPT) only, no question: the message is not trusted (NSD)
		{name: "FORMERR QDCOUNT 0", id: 30, req: rawReq(header(30, flagRD, 0, 0, 0, 0)),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr rd"}},
		{name: "FORMERR QDCOUNT 0 with OPT", id: 31, req: rawReq(cat(header(31, 0, 0, 0, 0, 1), rawOPT())),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr", opt: optPlain}},
		{name: "FORMERR QDCOUNT 2: bare header, RD not copied (NSD)", id: 32, req: rawReq(cat(header(32, flagRD|flagCD, 2, 0, 0, 0), wwwQuestion, wwwQuestion)),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR QDCOUNT 2 with OPT: no OPT", id: 33, req: rawReq(cat(header(33, 0, 2, 0, 0, 1), wwwQuestion, wwwQuestion, rawOPT())),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR truncated question", id: 34, req: rawReq(cat(header(34, 0, 1, 0, 0, 0), wwwQuestion[:10])),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR question without type and class", id: 35, req: rawReq(cat(header(35, 0, 1, 0, 0, 0), wwwQuestion[:17])),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR compression pointer in question", id: 36, req: rawReq(cat(header(36, 0, 1, 0, 0, 0), []byte{3, 'w', 'w', 'w', 0xc0, 12, 0, 1, 0, 1})),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR label over 63", id: 37, req: rawReq(cat(header(37, 0, 1, 0, 0, 0), []byte{0x40}, bytes.Repeat([]byte{'a'}, 64), []byte{0, 0, 1, 0, 1})),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR name over 255", id: 38, req: rawReq(cat(header(38, 0, 1, 0, 0, 0), bytes.Repeat(append([]byte{63}, bytes.Repeat([]byte{'a'}, 63)...), 4), []byte{0, 0, 1, 0, 1})),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR two OPTs: no OPT", id: 39, req: rawReq(cat(header(39, 0, 1, 0, 0, 2), wwwQuestion, rawOPT(), rawOPT())),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR record in answer section", id: 40, req: func(t testing.TB) []byte {
			return withMsg(t, q{id: 40, name: "www.example.com.", qtype: dns.TypeA, rd: true}, func(m *dns.Msg) {
				rr, _ := dns.NewRR("www.example.com. 60 IN A 192.0.2.1")
				m.Answer = append(m.Answer, rr)
			})
		}, want: want{rcode: 1, hdrRcode: 1, flags: "qr rd"}},
		{name: "FORMERR record in authority section", id: 41, req: func(t testing.TB) []byte {
			return withMsg(t, q{id: 41, name: "www.example.com.", qtype: dns.TypeA, edns: true}, func(m *dns.Msg) {
				rr, _ := dns.NewRR("example.com. 60 IN NS ns1.example.com.")
				m.Ns = append(m.Ns, rr)
			})
		}, want: want{rcode: 1, hdrRcode: 1, flags: "qr", opt: optPlain}},
		{name: "FORMERR OPT in answer section", id: 42, req: rawReq(cat(header(42, 0, 1, 1, 0, 0), wwwQuestion, rawOPT())),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR A record in additional", id: 43, req: func(t testing.TB) []byte {
			return withMsg(t, q{id: 43, name: "www.example.com.", qtype: dns.TypeA}, func(m *dns.Msg) {
				rr, _ := dns.NewRR("www.example.com. 60 IN A 192.0.2.1")
				m.Extra = append(m.Extra, rr)
			})
		}, want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR rcode set in query", id: 44, req: rawReq(cat(header(44, 2, 1, 0, 0, 0), wwwQuestion)),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR option overruns OPT", id: 45, req: rawReq(cat(header(45, 0, 1, 0, 0, 1), wwwQuestion, rawOPT(0, 10, 0, 16, 1, 2))),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR OPT owner not root", id: 46, req: rawReq(cat(header(46, 0, 1, 0, 0, 1), wwwQuestion, []byte{1, 'x', 0}, rawOPT()[1:])),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},
		{name: "FORMERR OPT rdata beyond message", id: 47, req: rawReq(cat(header(47, 0, 1, 0, 0, 1), wwwQuestion, rawOPT(0, 3, 0, 0)[:13])),
			want: want{rcode: 1, hdrRcode: 1, flags: "qr"}},

		// BADVERS
		{name: "BADVERS", id: 50, req: query(q{id: 50, name: "www.example.com.", qtype: dns.TypeA, rd: true, edns: true, ver: 1, do: true,
			opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}}),
			want: want{rcode: dns.RcodeBadVers, hdrRcode: 0, flags: "qr rd", question: "www.example.com. IN A", opt: &wantOPT{size: 1232, do: true, ext: 1}}},

		// CHAOS
		{name: "CHAOS id.server", id: 60, req: query(q{id: 60, name: "id.server.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}),
			want: want{flags: "qr", question: "id.server. CH TXT", answer: []string{`id.server. 0 CH TXT "ns1 \"lab\""`}}},
		{name: "CHAOS hostname.bind, case kept", id: 61, req: query(q{id: 61, name: "HostName.Bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, edns: true}),
			want: want{flags: "qr", question: "HostName.Bind. CH TXT", answer: []string{`HostName.Bind. 0 CH TXT "ns1 \"lab\""`}, opt: optPlain}},
		{name: "CHAOS version.bind", id: 62, req: query(q{id: 62, name: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}),
			want: want{flags: "qr", question: "version.bind. CH TXT", answer: []string{`version.bind. 0 CH TXT "geodnsd test"`}}},
		{name: "CHAOS version.server", id: 63, req: query(q{id: 63, name: "version.server.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}),
			want: want{flags: "qr", question: "version.server. CH TXT", answer: []string{`version.server. 0 CH TXT "geodnsd test"`}}},
		{name: "CHAOS id.server unset", bare: true, id: 64, req: query(q{id: 64, name: "id.server.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "id.server. CH TXT"}},
		{name: "CHAOS version.bind unset", bare: true, id: 65, req: query(q{id: 65, name: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "version.bind. CH TXT"}},
		{name: "CHAOS id.server type A", id: 66, req: query(q{id: 66, name: "id.server.", qtype: dns.TypeA, qclass: dns.ClassCHAOS}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "id.server. CH A"}},
		{name: "CHAOS other name", id: 67, req: query(q{id: 67, name: "authors.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "authors.bind. CH TXT"}},

		{name: "CHAOS version.bind unset, EDNS: EDE 18", bare: true, id: 68, req: query(q{id: 68, name: "version.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, edns: true}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "version.bind. CH TXT", opt: &wantOPT{size: 1232, options: 1, ede: 18}}},
		{name: "CHAOS other name, EDNS: EDE 21", id: 69, req: query(q{id: 69, name: "authors.bind.", qtype: dns.TypeTXT, qclass: dns.ClassCHAOS, edns: true}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "authors.bind. CH TXT", opt: &wantOPT{size: 1232, options: 1, ede: 21}}},

		// zone transfers
		{name: "AXFR over TCP with EDNS: REFUSED, EDE 18", tcp: true, id: 73, req: query(q{id: 73, name: "example.com.", qtype: dns.TypeAXFR, edns: true}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "example.com. IN AXFR", opt: &wantOPT{size: 1232, options: 1, ede: 18}}},
		{name: "AXFR over UDP: NOTIMP (as NSD)", udp: true, id: 70, req: query(q{id: 70, name: "example.com.", qtype: dns.TypeAXFR}),
			want: want{rcode: 4, hdrRcode: 4, flags: "qr", question: "example.com. IN AXFR"}},
		{name: "AXFR over TCP: REFUSED", tcp: true, id: 71, req: query(q{id: 71, name: "example.com.", qtype: dns.TypeAXFR}),
			want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "example.com. IN AXFR"}},
		{name: "IXFR with SOA in authority: REFUSED", id: 72, req: func(t testing.TB) []byte {
			return withMsg(t, q{id: 72, name: "example.com.", qtype: dns.TypeIXFR}, func(m *dns.Msg) {
				rr, _ := dns.NewRR(soa)
				m.Ns = append(m.Ns, rr)
			})
		}, want: want{rcode: 5, hdrRcode: 5, flags: "qr", question: "example.com. IN IXFR"}},

		// size limits
		{name: "no EDNS, answer over 512: TC", udp: true, id: 80, req: query(q{id: 80, name: "big.example.com.", qtype: dns.TypeTXT, rd: true}),
			want: want{flags: "qr aa tc rd", question: "big.example.com. IN TXT"}},
		{name: "EDNS 1232: fits", id: 81, req: query(q{id: 81, name: "big.example.com.", qtype: dns.TypeTXT, edns: true}),
			want: want{flags: "qr aa", question: "big.example.com. IN TXT", answer: txtRecords("big.example.com.", 10, "b"), opt: optPlain}},
		{name: "EDNS client size 700 honoured: TC", udp: true, id: 82, req: query(q{id: 82, name: "big.example.com.", qtype: dns.TypeTXT, edns: true, size: 700, do: true}),
			want: want{flags: "qr aa tc", question: "big.example.com. IN TXT", opt: optDO}},
		{name: "EDNS client size below 512 counts as 512", udp: true, id: 83, req: query(q{id: 83, name: "big.example.com.", qtype: dns.TypeTXT, edns: true, size: 100}),
			want: want{flags: "qr aa tc", question: "big.example.com. IN TXT", opt: optPlain}},
		{name: "EDNS client 4096, ours 1232: TC", udp: true, id: 84, req: query(q{id: 84, name: "huge.example.com.", qtype: dns.TypeTXT, edns: true, size: 4096}),
			want: want{flags: "qr aa tc", question: "huge.example.com. IN TXT", opt: optPlain}},
		{name: "TCP: full answer", tcp: true, id: 85, req: query(q{id: 85, name: "huge.example.com.", qtype: dns.TypeTXT, edns: true}),
			want: want{flags: "qr aa", question: "huge.example.com. IN TXT", answer: txtRecords("huge.example.com.", 30, "h"), opt: optPlain}},
		{name: "TCP without EDNS: full answer", tcp: true, id: 86, req: query(q{id: 86, name: "big.example.com.", qtype: dns.TypeTXT}),
			want: want{flags: "qr aa", question: "big.example.com. IN TXT", answer: txtRecords("big.example.com.", 10, "b")}},
		{name: "additional dropped without TC", udp: true, id: 87, req: query(q{id: 87, name: "manymx.example.com.", qtype: dns.TypeMX}),
			want: want{flags: "qr aa", question: "manymx.example.com. IN MX", answer: manyMX},
			custom: func(t *testing.T, m *dns.Msg, raw []byte) {
				if len(raw) > 512 {
					t.Errorf("reply %d bytes, over 512", len(raw))
				}
				if n := len(m.Extra); n == 0 || n >= 20 {
					t.Errorf("%d additional records, want some but not all 20", n)
				}
				for _, rr := range m.Extra {
					if !strings.HasPrefix(rr.Header().Name, "mx") {
						t.Errorf("unexpected additional %v", rr)
					}
				}
			}},
		{name: "additional complete with EDNS", id: 88, req: query(q{id: 88, name: "manymx.example.com.", qtype: dns.TypeMX, edns: true}),
			want: want{flags: "qr aa", question: "manymx.example.com. IN MX", answer: manyMX, opt: optPlain},
			custom: func(t *testing.T, m *dns.Msg, raw []byte) {
				if n := len(m.Extra) - 1; n != 20 {
					t.Errorf("%d additional records, want 20", n)
				}
			}},
		{name: "referral glue does not fit: TC (RFC 9471)", udp: true, id: 89, req: query(q{id: 89, name: "www.deleg.example.com.", qtype: dns.TypeA, rd: true}),
			want: want{flags: "qr tc rd", question: "www.deleg.example.com. IN A", ns: deleg}},
		{name: "referral with EDNS: NS and all glue", id: 90, req: query(q{id: 90, name: "www.deleg.example.com.", qtype: dns.TypeA, edns: true}),
			want: want{flags: "qr", question: "www.deleg.example.com. IN A", ns: deleg, extra: glue, opt: optPlain}},
		{name: "small referral", id: 91, req: query(q{id: 91, name: "a.small.example.com.", qtype: dns.TypeA}),
			want: want{flags: "qr", question: "a.small.example.com. IN A", ns: []string{"small.example.com. 3600 IN NS ns.small.example.com."},
				extra: []string{"ns.small.example.com. 3600 IN A 192.0.2.200"}}},
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return twoDigits(i)
}

// testServers returns a configured server and a bare one over the test zone.
func testServers(t testing.TB) (full, bare *Server) {
	t.Helper()
	full = newTestServer(t, Options{NSID: testNSID, Identity: `ns1 "lab"`, VersionBind: "geodnsd test"})
	bare = newTestServer(t, Options{})
	return full, bare
}

func TestRespond(t *testing.T) {
	full, bare := testServers(t)
	workers := map[*Server][2]*worker{}
	for _, s := range []*Server{full, bare} {
		workers[s] = [2]*worker{s.newUDPWorker(), s.h.newWorker(protoTCP, nil, s.tcpCtr)}
	}
	for _, tc := range respondCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := full
			if tc.bare {
				s = bare
			}
			w := workers[s][0]
			if tc.tcp {
				w = workers[s][1]
			}
			req := tc.req(t)
			// twice: the cache miss and the cache hit must be equal
			first := w.respond(nil, req)
			second := w.respond(make([]byte, 0, 512), req)
			if !bytes.Equal(first, second) {
				t.Errorf("second reply differs:\n% x\n% x", first, second)
			}
			wt := tc.want
			if tc.custom != nil && wt.extra == nil && !wt.drop {
				wt.extra = nil
				m := new(dns.Msg)
				if err := m.Unpack(first); err != nil {
					t.Fatalf("unpack: %v", err)
				}
				tc.custom(t, m, first)
				first = stripExtra(t, first)
			}
			check(t, first, tc.id, wt)
		})
	}
}

// stripExtra repacks a reply without its non-OPT additional records, for
// cases whose additional section a custom check has looked at.
func stripExtra(t *testing.T, raw []byte) []byte {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		t.Fatalf("unpack: %v", err)
	}
	var keep []dns.RR
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			keep = append(keep, rr)
		}
	}
	m.Extra = keep
	b, err := m.Pack()
	if err != nil {
		t.Fatalf("repack: %v", err)
	}
	return b
}

// TestRespondAppends checks that respond appends after what dst holds.
func TestRespondAppends(t *testing.T) {
	s := newTestServer(t, Options{})
	w := s.newUDPWorker()
	req := q{id: 7, name: "www.example.com.", qtype: dns.TypeA}.bytes(t)
	for range 2 { // miss, hit
		out := w.respond([]byte{0xaa, 0xbb}, req)
		if out[0] != 0xaa || out[1] != 0xbb {
			t.Fatalf("prefix overwritten: % x", out[:2])
		}
		check(t, out[2:], 7, want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
	}
}

// TestCaseOnCacheHit: a hit after a miss in another case carries the case
// of the new query, and the miss's reply is not changed.
func TestCaseOnCacheHit(t *testing.T) {
	s := newTestServer(t, Options{})
	w := s.newUDPWorker()
	first := w.respond(nil, q{id: 1, name: "www.example.com.", qtype: dns.TypeA, rd: true}.bytes(t))
	saved := bytes.Clone(first)
	n := len(w.cache.m)
	second := w.respond(nil, q{id: 2, name: "WWW.EXAMPLE.com.", qtype: dns.TypeA, cd: true}.bytes(t))
	if len(w.cache.m) != n {
		t.Fatalf("cache grew from %d to %d: not a hit", n, len(w.cache.m))
	}
	check(t, saved, 1, want{flags: "qr aa rd", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
	check(t, first, 1, want{flags: "qr aa rd", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
	check(t, second, 2, want{flags: "qr aa cd", question: "WWW.EXAMPLE.com. IN A", answer: []string{
		"WWW.EXAMPLE.com. 300 IN A 192.0.2.80", "WWW.EXAMPLE.com. 300 IN A 192.0.2.81"}})
}

// TestCacheInvalidation: a new snapshot changes the answer at once.
func TestCacheInvalidation(t *testing.T) {
	src := newSource(t, testZone)
	s := newTestServer(t, Options{Source: src})
	w := s.newUDPWorker()
	req := q{id: 9, name: "www.example.com.", qtype: dns.TypeA}.bytes(t)
	for range 2 {
		check(t, w.respond(nil, req), 9, want{flags: "qr aa", question: "www.example.com. IN A", answer: []string{wwwA80, wwwA81}})
	}
	changed := strings.Replace(testZone, "www 300 IN A    192.0.2.81", "www 300 IN A    192.0.2.99", 1)
	src.p.Store(zones.NewSnapshot(parseZone(t, changed, "example.com.")))
	for range 2 {
		check(t, w.respond(nil, req), 9, want{flags: "qr aa", question: "www.example.com. IN A",
			answer: []string{wwwA80, "www.example.com. 300 IN A 192.0.2.99"}})
	}
	src.p.Store(nil) // no snapshot: REFUSED
	check(t, w.respond(nil, req), 9, want{rcode: 5, hdrRcode: 5, flags: "qr", question: "www.example.com. IN A"})
}

// TestCacheBounded: a flood of distinct names does not grow the cache
// beyond its bounds.
func TestCacheBounded(t *testing.T) {
	s := newTestServer(t, Options{})
	w := s.newUDPWorker()
	w.cache = newCache(100, 1<<20)
	for i := range 1000 {
		w.respond(nil, q{id: 1, name: "n" + itoa(i%100) + "x" + itoa(i/100) + ".example.com.", qtype: dns.TypeA}.bytes(t))
		if len(w.cache.m) > 100 {
			t.Fatalf("cache has %d entries, bound 100", len(w.cache.m))
		}
	}
	w.cache = newCache(1000, 2000)
	for i := range 100 {
		w.respond(nil, q{id: 1, name: "n" + itoa(i) + ".example.com.", qtype: dns.TypeA}.bytes(t))
		if w.cache.bytes > 2000 {
			t.Fatalf("cache holds %d bytes, bound 2000", w.cache.bytes)
		}
	}
}

// TestCacheHitAllocs: a cached answer allocates nothing.
func TestCacheHitAllocs(t *testing.T) {
	s := newTestServer(t, Options{NSID: testNSID})
	w := s.newUDPWorker()
	for _, x := range []q{
		{id: 1, name: "WwW.example.com.", qtype: dns.TypeA, rd: true},
		{id: 2, name: "www.example.com.", qtype: dns.TypeA, edns: true, do: true, opts: []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID}}},
		{id: 3, name: "big.example.com.", qtype: dns.TypeTXT}, // truncated variant cached
		{id: 4, name: "nothere.example.com.", qtype: dns.TypeA, edns: true},
	} {
		req := x.bytes(t)
		out := make([]byte, 0, 1232)
		w.respond(out, req)
		if n := testing.AllocsPerRun(100, func() { w.respond(out, req) }); n != 0 {
			t.Errorf("%s %s: %v allocations per cached answer", x.name, dns.TypeToString[x.qtype], n)
		}
	}
	// error replies are built by hand: no allocation either
	req := cat(header(1, 0, 2, 0, 0, 0), wwwQuestion, wwwQuestion)
	out := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { w.respond(out, req) }); n != 0 {
		t.Errorf("FORMERR: %v allocations", n)
	}
}

// TestPanicRecovered: a panic below respond is answered SERVFAIL and
// counted.
func TestPanicRecovered(t *testing.T) {
	s := newTestServer(t, Options{Source: panicSource{}})
	w := s.newUDPWorker()
	out := w.respond(nil, q{id: 77, name: "www.example.com.", qtype: dns.TypeA, rd: true}.bytes(t))
	check(t, out, 77, want{rcode: 2, hdrRcode: 2, flags: "qr rd"})
	if got := w.ctr.panics.Load(); got != 1 {
		t.Errorf("panics counted %d, want 1", got)
	}
}

type panicSource struct{}

func (panicSource) Snapshot() *zones.Snapshot { panic("boom") }

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero value", Options{}, true},
		{"udp size too small", Options{UDPSize: 511}, false},
		{"udp size too big", Options{UDPSize: 65536}, false},
		{"negative sockets", Options{SocketsPerAddress: -1}, false},
		{"negative idle", Options{TCPIdleTimeout: -1}, false},
		{"negative max conns", Options{TCPMaxConnections: -1}, false},
		{"nsid too long", Options{NSID: strings.Repeat("n", 129)}, false},
		{"identity too long", Options{Identity: strings.Repeat("n", 256)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if (err == nil) != tc.ok {
				t.Errorf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
