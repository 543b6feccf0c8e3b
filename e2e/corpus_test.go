package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// queryCase is one query of the corpus: the exact bytes sent to both servers.
type queryCase struct {
	n       int
	rule    string // which rule of the zones it exercises (README.md)
	network string // "udp" or "tcp"
	family  string // "4" or "6"
	desc    string // human-readable: qname, class, type, transport, EDNS, flags
	wire    []byte
	// Parsed view of the query, nil for raw (malformed) cases.
	qname  string // as sent, with its 0x20 case
	qtype  uint16
	qclass uint16
	opcode int
	// timeout for a reply; cases that a server may drop get a short one.
	timeout time.Duration
}

// corpusNames are the names of the zone rules (see testdata/zones and
// README.md), each asked with every type in corpusTypes.
var corpusNames = []struct{ rule, name string }{
	{"apex", "example.com."},
	{"www", "www.example.com."},
	{"nxdomain", "nope.example.com."},
	{"nxdomain-deep", "a.b.nope.example.com."},
	{"ent", "ent.example.com."},
	{"ent-deep", "b.ent2.example.com."},
	{"ent-top", "ent2.example.com."},
	{"below-ent", "x.ent.example.com."},
	{"mixed-case-owner", "mixedcase.example.com."},
	{"mixed-case-owner-2", "upper.case.example.com."},
	{"ent-of-mixed-case", "case.example.com."},
	{"cname-to-mixed-case", "caseptr.example.com."},
	{"cname-chain", "alias.example.com."},
	{"cname-other-served-zone", "ext.example.com."},
	{"cname-unserved-zone", "extorg.example.com."},
	{"cname-dangling", "dangling.example.com."},
	{"cname-to-ent", "toent.example.com."},
	{"cname-loop", "loop1.example.com."},
	{"cname-into-child", "tochild.example.com."},
	{"cname-below-delegation", "todeleg.example.com."},
	{"cname-to-wildcard", "towild.example.com."},
	{"wildcard", "foo.wild.example.com."},
	{"wildcard-deep", "a.b.wild.example.com."},
	{"wildcard-parent-ent", "wild.example.com."},
	{"wildcard-literal", "*.wild.example.com."},
	{"wildcard-blocked-by-name", "exists.wild.example.com."},
	{"wildcard-blocked-by-ent", "ent.wild.example.com."},
	{"below-wildcard-blocking-ent", "x.ent.wild.example.com."},
	{"below-wildcard-blocking-name", "x.exists.wild.example.com."},
	{"wildcard-cname", "foo.cwild.example.com."},
	{"wildcard-cname-to-wildcard", "foo.cwild2.example.com."},
	{"delegation", "deleg.example.com."},
	{"below-delegation", "host.deleg.example.com."},
	{"below-delegation-deep", "a.b.deleg.example.com."},
	{"glue", "ns.deleg.example.com."},
	{"delegation-without-ds", "nods.example.com."},
	{"below-delegation-without-ds", "x.nods.example.com."},
	{"child-apex", "sub.example.com."},
	{"child-www", "www.sub.example.com."},
	{"child-ns", "ns1.sub.example.com."},
	{"child-nxdomain", "nope.sub.example.com."},
	{"txt-over-512", "medium.example.com."},
	{"txt-over-1232", "big.example.com."},
	{"srv", "_sip._tcp.example.com."},
	{"srv-parent-ent", "_tcp.example.com."},
	{"mx-in-zone-targets", "mxonly.example.com."},
	{"other-zone-apex", "example.net."},
	{"other-zone-www", "www.example.net."},
	{"escaped-dot-owner", `has\.dot.example.com.`},
	{"escaped-dot-owner-ddd", `has\046dot.example.com.`},
	{"escaped-space-owner", `Office\032Printer._ipp._tcp.example.com.`},
	{"cname-escaped-target", "escalias.example.com."},
	{"mx-escaped-target", "escmx.example.com."},
	{"escaped-non-ascii-owner", `caf\195\169.example.com.`},
	{"cname-to-over-1232", "tobig.example.com."},
	{"cname-to-over-512", "tomedium.example.com."},
	{"dname-owner", "dn.example.com."},
	{"below-dname", "www.dn.example.com."},
	{"below-dname-deep-nxdomain", "a.b.dn.example.com."},
	{"below-dname-to-other-zone", "www.extdn.example.com."},
	{"cname-to-below-dname", "todn.example.com."},
	{"refused-sibling", "www.example.org."},
	{"refused-parent", "com."},
	{"refused-root", "."},
}

// corpusTypes: every type of the zones, ANY, and types with no data anywhere
// (CAA, a private type) or never answered (DNSKEY without signing).
var corpusTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeSOA, dns.TypeMX, dns.TypeTXT,
	dns.TypeSRV, dns.TypeCNAME, dns.TypeDS, dns.TypeANY, dns.TypeCAA, 65280,
}

// ednsVariant is one EDNS setting of the query.
type ednsVariant struct {
	name string
	on   bool
	size uint16
	do   bool
}

var ednsVariants = []ednsVariant{
	{name: "noedns"},
	{name: "edns1232", on: true, size: 1232},
	{name: "edns4096+do", on: true, size: 4096, do: true},
	{name: "edns512", on: true, size: 512},
}

// corpusSeed seeds the 0x20 case and the RD/CD bits; GEODNSD_E2E_SEED
// overrides it to reproduce a run.
func corpusSeed() uint64 {
	if s := os.Getenv("GEODNSD_E2E_SEED"); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return 20240101
}

// randomCase applies 0x20 mixed case to a name.
func randomCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.IntN(2) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// buildCorpus returns every query of the differential test. v6 adds a
// subset sent over IPv6.
func buildCorpus(seed uint64, v6 bool) []*queryCase {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var cs []*queryCase
	add := func(c *queryCase) {
		c.n = len(cs)
		if c.timeout == 0 {
			c.timeout = 2 * time.Second
		}
		if c.family == "" {
			c.family = "4"
		}
		cs = append(cs, c)
	}
	msgCase := func(rule, network, family string, m *dns.Msg, edns string) *queryCase {
		wire, err := m.Pack()
		if err != nil {
			panic(fmt.Sprintf("pack %v: %v", m.Question, err))
		}
		q := m.Question[0]
		flags := flagString(m)
		return &queryCase{
			rule: rule, network: network, family: family, wire: wire,
			qname: q.Name, qtype: q.Qtype, qclass: q.Qclass, opcode: m.Opcode,
			desc: fmt.Sprintf("%s %s %s %s/%s %s%s", q.Name, dns.ClassToString[q.Qclass], typeString(q.Qtype),
				network, family, edns, flags),
		}
	}
	// The rules × types × transports × EDNS.
	for _, nm := range corpusNames {
		for _, qt := range corpusTypes {
			for _, network := range []string{"udp", "tcp"} {
				for _, ev := range ednsVariants {
					m := new(dns.Msg)
					m.Id = uint16(rng.Uint32())
					m.SetQuestion(randomCase(rng, nm.name), qt)
					m.RecursionDesired = rng.IntN(2) == 0
					m.CheckingDisabled = rng.IntN(4) == 0
					if ev.on {
						m.SetEdns0(ev.size, ev.do)
					}
					add(msgCase(nm.rule, network, "4", m, ev.name))
				}
			}
		}
	}
	// IPv6: the rules with one EDNS setting.
	if v6 {
		for _, nm := range corpusNames {
			for _, qt := range []uint16{dns.TypeA, dns.TypeTXT, dns.TypeNS} {
				for _, network := range []string{"udp", "tcp"} {
					m := new(dns.Msg)
					m.Id = uint16(rng.Uint32())
					m.SetQuestion(randomCase(rng, nm.name), qt)
					m.SetEdns0(1232, false)
					add(msgCase(nm.rule, network, "6", m, "edns1232"))
				}
			}
		}
	}
	for _, c := range specialCases(rng) {
		for _, network := range []string{"udp", "tcp"} {
			c2 := *c
			c2.network = network
			if c2.wire == nil {
				continue
			}
			if c2.msg != nil {
				qc := msgCase(c2.rule, network, "4", c2.msg, c2.ednsName)
				qc.timeout = c2.timeout
				add(qc)
				continue
			}
			add(&queryCase{rule: c2.rule, network: network, family: "4", wire: c2.wire,
				desc: c2.rule + " (raw) " + network, timeout: c2.timeout})
		}
	}
	return cs
}

// special is a hand-written query: a message, or raw bytes when it cannot
// be expressed as a valid message.
type special struct {
	rule     string
	msg      *dns.Msg
	ednsName string
	wire     []byte
	network  string
	timeout  time.Duration
}

func specialCases(rng *rand.Rand) []*special {
	var out []*special
	mk := func(name string, qt, qc uint16) *dns.Msg {
		m := new(dns.Msg)
		m.Id = uint16(rng.Uint32())
		m.SetQuestion(randomCase(rng, name), qt)
		m.Question[0].Qclass = qc
		return m
	}
	addMsg := func(rule, ednsName string, m *dns.Msg) {
		wire, err := m.Pack()
		if err != nil {
			panic(rule + ": " + err.Error())
		}
		out = append(out, &special{rule: rule, msg: m, ednsName: ednsName, wire: wire})
	}
	addRaw := func(rule string, wire []byte, timeout time.Duration) {
		out = append(out, &special{rule: rule, wire: wire, timeout: timeout})
	}
	withEDNS := func(m *dns.Msg, size uint16, do bool, opts ...dns.EDNS0) *dns.Msg {
		m.SetEdns0(size, do)
		o := m.IsEdns0()
		o.Option = append(o.Option, opts...)
		return m
	}
	nsid := func() dns.EDNS0 { return &dns.EDNS0_NSID{Code: dns.EDNS0NSID} }

	// CHAOS.
	for _, n := range []string{"id.server.", "hostname.bind.", "version.bind.", "version.server.", "authors.bind.", "example.com."} {
		addMsg("chaos", "noedns", mk(n, dns.TypeTXT, dns.ClassCHAOS))
		addMsg("chaos", "edns1232", withEDNS(mk(n, dns.TypeTXT, dns.ClassCHAOS), 1232, false))
	}
	addMsg("chaos-type-a", "noedns", mk("id.server.", dns.TypeA, dns.ClassCHAOS))
	addMsg("chaos-type-any", "noedns", mk("id.server.", dns.TypeANY, dns.ClassCHAOS))
	addMsg("chaos-nsid", "edns1232+nsid", withEDNS(mk("id.server.", dns.TypeTXT, dns.ClassCHAOS), 1232, false, nsid()))

	// NSID on every kind of answer.
	for _, n := range []string{"www.example.com.", "nope.example.com.", "deleg.example.com.", "www.example.org.", "big.example.com."} {
		qt := dns.TypeA
		if strings.HasPrefix(n, "big") {
			qt = dns.TypeTXT
		}
		addMsg("nsid", "edns1232+nsid", withEDNS(mk(n, qt, dns.ClassINET), 1232, false, nsid()))
		addMsg("nsid", "edns4096+do+nsid", withEDNS(mk(n, qt, dns.ClassINET), 4096, true, nsid()))
	}
	// NSID with a payload (a client must send it empty; servers ignore it).
	addMsg("nsid-with-data", "edns1232+nsid=ab", withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, false,
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "ab"}))

	// EDNS versions, sizes and options.
	for _, v := range []uint8{1, 2, 255} {
		m := withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, false)
		m.IsEdns0().SetVersion(v)
		addMsg("edns-badvers", fmt.Sprintf("edns1232,version=%d", v), m)
	}
	{
		m := withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, true, nsid())
		m.IsEdns0().SetVersion(1)
		addMsg("edns-badvers", "edns1232+do+nsid,version=1", m)
		m = withEDNS(mk("www.example.org.", dns.TypeA, dns.ClassINET), 1232, false)
		m.IsEdns0().SetVersion(1)
		addMsg("edns-badvers-refused", "edns1232,version=1", m)
	}
	for _, size := range []uint16{0, 100, 511, 513, 1231, 1233, 65535} {
		addMsg("edns-size", fmt.Sprintf("edns%d", size), withEDNS(mk("medium.example.com.", dns.TypeTXT, dns.ClassINET), size, false))
	}
	addMsg("edns-unknown-option", "edns1232+opt65001", withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, false,
		&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}}))
	addMsg("edns-cookie", "edns1232+cookie", withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, false,
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}))
	addMsg("edns-ecs", "edns1232+ecs", withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, false,
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{198, 51, 100, 0}}))
	{
		m := withEDNS(mk("www.example.com.", dns.TypeA, dns.ClassINET), 1232, false)
		m.IsEdns0().Hdr.Ttl |= 0x0000_4000 // an unknown EDNS flag bit (Z)
		addMsg("edns-z-flag", "edns1232,z=0x4000", m)
	}

	// Header flags.
	for _, f := range []struct {
		name string
		set  func(*dns.Msg)
	}{
		{"rd0", func(m *dns.Msg) { m.RecursionDesired = false }},
		{"cd", func(m *dns.Msg) { m.CheckingDisabled = true }},
		{"ad", func(m *dns.Msg) { m.AuthenticatedData = true }},
		{"ra", func(m *dns.Msg) { m.RecursionAvailable = true }},
		{"aa", func(m *dns.Msg) { m.Authoritative = true }},
		{"z", func(m *dns.Msg) { m.Zero = true }},
		{"tc", func(m *dns.Msg) { m.Truncated = true }},
	} {
		for _, n := range []string{"www.example.com.", "nope.example.com.", "www.example.org."} {
			m := mk(n, dns.TypeA, dns.ClassINET)
			f.set(m)
			addMsg("flag-"+f.name, "noedns", m)
		}
	}

	// Classes.
	for _, qc := range []uint16{dns.ClassANY, dns.ClassNONE, dns.ClassHESIOD, 1234} {
		addMsg("class", "noedns", mk("www.example.com.", dns.TypeA, qc))
		addMsg("class", "noedns", mk("example.com.", dns.TypeSOA, qc))
	}

	// Meta and special types.
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, 0,
		dns.TypeTKEY, dns.TypeTSIG, dns.TypeOPT, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY, dns.TypeNSEC3PARAM} {
		addMsg("type-"+typeString(qt), "noedns", mk("example.com.", qt, dns.ClassINET))
	}
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} { // refused transfers: EDE 18 Prohibited
		addMsg("type-"+typeString(qt)+"-edns", "edns1232", withEDNS(mk("example.com.", qt, dns.ClassINET), 1232, false))
	}
	for _, qt := range []uint16{dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY} {
		addMsg("type-"+typeString(qt)+"-do", "edns4096+do", withEDNS(mk("www.example.com.", qt, dns.ClassINET), 4096, true))
	}

	// Opcodes other than QUERY.
	for _, op := range []int{dns.OpcodeIQuery, dns.OpcodeStatus, 3, dns.OpcodeNotify, dns.OpcodeUpdate, 6, 15} {
		m := mk("example.com.", dns.TypeSOA, dns.ClassINET)
		m.Opcode = op
		addMsg("opcode-"+opcodeString(op), "noedns", m)
		m = withEDNS(mk("example.com.", dns.TypeSOA, dns.ClassINET), 1232, false)
		m.Opcode = op
		addMsg("opcode-"+opcodeString(op), "edns1232", m)
	}
	{ // ISC genreport "opcodeflg": opcode 15 with every header flag set
		m := mk("example.com.", dns.TypeSOA, dns.ClassINET)
		m.Opcode = 15
		m.Authoritative, m.Truncated, m.RecursionDesired, m.RecursionAvailable = true, true, true, true
		m.Zero, m.AuthenticatedData, m.CheckingDisabled = true, true, true
		addMsg("opcodeflg", "noedns", m)
		m = mk("example.com.", dns.TypeSOA, dns.ClassINET)
		m.Opcode, m.RecursionDesired, m.CheckingDisabled = dns.OpcodeStatus, true, true
		addMsg("opcode-STATUS-rd-cd", "noedns", m)
	}
	{ // ISC genreport "dnswkk": signed with a key the server does not know
		m := withEDNS(mk("example.com.", dns.TypeSOA, dns.ClassINET), 1232, false)
		m.SetTsig("unknown.key.", dns.HmacSHA256, 300, 1700000000)
		ts := m.Extra[len(m.Extra)-1].(*dns.TSIG)
		ts.MAC, ts.MACSize = strings.Repeat("ab", 32), 32
		addMsg("tsig-unknown-key", "edns1232+tsig", m)
		m = mk("www.example.com.", dns.TypeA, dns.ClassINET)
		m.SetTsig("unknown.key.", dns.HmacSHA256, 300, 1700000000)
		ts = m.Extra[len(m.Extra)-1].(*dns.TSIG)
		ts.MAC, ts.MACSize = strings.Repeat("ab", 32), 32
		addMsg("tsig-unknown-key", "noedns+tsig", m)
	}
	{ // NOTIFY with the SOA in the answer section, as a primary sends it
		m := mk("example.com.", dns.TypeSOA, dns.ClassINET)
		m.Opcode = dns.OpcodeNotify
		m.Authoritative = true
		soa, _ := dns.NewRR("example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2024010102 7200 3600 1209600 300")
		m.Answer = []dns.RR{soa}
		addMsg("opcode-NOTIFY-with-soa", "noedns", m)
	}

	// Malformed messages as raw bytes.
	hdr := func(id uint16, flags uint16, qd, an, ns, ar uint16) []byte {
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b[0:], id)
		binary.BigEndian.PutUint16(b[2:], flags)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		binary.BigEndian.PutUint16(b[8:], ns)
		binary.BigEndian.PutUint16(b[10:], ar)
		return b
	}
	question := func(name string, qt, qc uint16) []byte {
		b := make([]byte, 255+4)
		off, err := dns.PackDomainName(randomCase(rng, name), b, 0, nil, false)
		if err != nil {
			panic(err)
		}
		binary.BigEndian.PutUint16(b[off:], qt)
		binary.BigEndian.PutUint16(b[off+2:], qc)
		return b[:off+4]
	}
	opt := func(size uint16) []byte { // root owner, OPT, size, ttl 0, rdlen 0
		return []byte{0, 0, 41, byte(size >> 8), byte(size), 0, 0, 0, 0, 0, 0}
	}
	id := func() uint16 { return uint16(rng.Uint32()) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	short := 400 * time.Millisecond // cases that a server may drop
	qWWW := func() []byte { return question("www.example.com.", dns.TypeA, dns.ClassINET) }
	addRaw("formerr-two-questions", cat(hdr(id(), 0x0100, 2, 0, 0, 0), qWWW(), question("mail.example.com.", dns.TypeA, dns.ClassINET)), short)
	addRaw("formerr-two-questions-edns", cat(hdr(id(), 0x0100, 2, 0, 0, 1), qWWW(), question("mail.example.com.", dns.TypeA, dns.ClassINET), opt(1232)), short)
	addRaw("formerr-same-question-twice", cat(hdr(id(), 0x0100, 2, 0, 0, 0), qWWW(), question("www.example.com.", dns.TypeA, dns.ClassINET)), short)
	addRaw("formerr-no-question", hdr(id(), 0x0100, 0, 0, 0, 0), short)
	addRaw("formerr-no-question-edns", cat(hdr(id(), 0x0100, 0, 0, 0, 1), opt(1232)), short)
	addRaw("formerr-qdcount-without-question", hdr(id(), 0x0100, 1, 0, 0, 0), short)
	addRaw("formerr-truncated-question", cat(hdr(id(), 0x0100, 1, 0, 0, 0), qWWW()[:10]), short)
	addRaw("formerr-missing-qclass", func() []byte { q := qWWW(); return cat(hdr(id(), 0x0100, 1, 0, 0, 0), q[:len(q)-2]) }(), short)
	addRaw("formerr-trailing-garbage", cat(hdr(id(), 0x0100, 1, 0, 0, 0), qWWW(), []byte{0xde, 0xad, 0xbe, 0xef}), short)
	addRaw("formerr-arcount-without-record", cat(hdr(id(), 0x0100, 1, 0, 0, 1), qWWW()), short)
	addRaw("formerr-two-opt", cat(hdr(id(), 0x0100, 1, 0, 0, 2), qWWW(), opt(1232), opt(1232)), short)
	addRaw("formerr-opt-non-root-owner", cat(hdr(id(), 0x0100, 1, 0, 0, 1), qWWW(),
		[]byte{3, 'c', 'o', 'm', 0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0}), short)
	addRaw("formerr-opt-in-answer", cat(hdr(id(), 0x0100, 1, 1, 0, 0), qWWW(), opt(1232)), short)
	addRaw("formerr-bad-label-type", cat(hdr(id(), 0x0100, 1, 0, 0, 0), []byte{0x40, 'a', 0, 0, 1, 0, 1}), short)
	addRaw("formerr-pointer-forward", cat(hdr(id(), 0x0100, 1, 0, 0, 0), []byte{0xc0, 0x20, 0, 1, 0, 1}), short)
	addRaw("formerr-pointer-loop", cat(hdr(id(), 0x0100, 1, 0, 0, 0), []byte{0xc0, 0x0c, 0, 1, 0, 1}), short)
	addRaw("compressed-qname", cat(hdr(id(), 0x0100, 1, 0, 0, 0), []byte{3, 'w', 'w', 'w', 0xc0, 0x14, 0, 1, 0, 1},
		[]byte{7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0}), short)
	addRaw("drop-qr-set", cat(hdr(id(), 0x8100, 1, 0, 0, 0), qWWW()), short)
	addRaw("drop-short-header", []byte{0x12, 0x34, 0x01, 0x00, 0x00}, short)
	addRaw("drop-empty", []byte{}, short)
	addRaw("answer-section-in-query", cat(hdr(id(), 0x0100, 1, 1, 0, 0), qWWW(),
		[]byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1}), short)
	addRaw("authority-section-in-query", cat(hdr(id(), 0x0100, 1, 0, 1, 0), qWWW(),
		[]byte{0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1}), short)
	addRaw("rcode-set-in-query", cat(hdr(id(), 0x0105, 1, 0, 0, 0), qWWW()), short)
	{ // 255-octet name, the maximum
		long := strings.Repeat("a23456789.", 24) + "example.com." // 240 + 13 = 253 chars, 255 octets on the wire
		addRaw("max-length-name", cat(hdr(id(), 0x0100, 1, 0, 0, 0), question(long, dns.TypeA, dns.ClassINET)), short)
	}
	return out
}

func flagString(m *dns.Msg) string {
	var f []string
	if m.Opcode != dns.OpcodeQuery {
		f = append(f, "opcode="+opcodeString(m.Opcode))
	}
	for _, x := range []struct {
		on   bool
		name string
	}{{m.RecursionDesired, "rd"}, {m.CheckingDisabled, "cd"}, {m.AuthenticatedData, "ad"},
		{m.RecursionAvailable, "ra"}, {m.Authoritative, "aa"}, {m.Zero, "z"}, {m.Truncated, "tc"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	if len(f) == 0 {
		return ""
	}
	return " " + strings.Join(f, ",")
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

func opcodeString(op int) string {
	if s, ok := dns.OpcodeToString[op]; ok {
		return s
	}
	return fmt.Sprintf("OPCODE%d", op)
}
