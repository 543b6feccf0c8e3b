package dnsserver

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geodnsd/geodnsd/zones"
)

// testZone is the zone most tests answer from. Its sizes are chosen for
// the truncation tests: see the comments.
var testZone = `
$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1 hostmaster 2024010101 7200 3600 1209600 300
@       IN NS   ns1
@       IN NS   ns2
@       IN MX   10 mail
ns1     IN A    192.0.2.53
ns2     IN A    192.0.2.54
www 300 IN A    192.0.2.80
www 300 IN A    192.0.2.81
mail    IN A    192.0.2.25
mail    IN AAAA 2001:db8::25
alias   IN CNAME www
; 10 MX: the answer (~230 bytes) fits in 512, the additional (~480) does not
manymx  IN MX 10 mx1
manymx  IN MX 10 mx2
manymx  IN MX 10 mx3
manymx  IN MX 10 mx4
manymx  IN MX 10 mx5
manymx  IN MX 10 mx6
manymx  IN MX 10 mx7
manymx  IN MX 10 mx8
manymx  IN MX 10 mx9
manymx  IN MX 10 mx10
mx1  A 192.0.2.1
mx2  A 192.0.2.2
mx3  A 192.0.2.3
mx4  A 192.0.2.4
mx5  A 192.0.2.5
mx6  A 192.0.2.6
mx7  A 192.0.2.7
mx8  A 192.0.2.8
mx9  A 192.0.2.9
mx10 A 192.0.2.10
mx1  AAAA 2001:db8::1
mx2  AAAA 2001:db8::2
mx3  AAAA 2001:db8::3
mx4  AAAA 2001:db8::4
mx5  AAAA 2001:db8::5
mx6  AAAA 2001:db8::6
mx7  AAAA 2001:db8::7
mx8  AAAA 2001:db8::8
mx9  AAAA 2001:db8::9
mx10 AAAA 2001:db8::10
; a referral whose in-domain glue (~350 bytes) does not all fit in 512
deleg IN NS ns1.deleg
deleg IN NS ns2.deleg
deleg IN NS ns3.deleg
deleg IN NS ns4.deleg
deleg IN NS ns5.deleg
deleg IN NS ns6.deleg
deleg IN NS ns7.deleg
deleg IN NS ns8.deleg
ns1.deleg A 192.0.2.101
ns2.deleg A 192.0.2.102
ns3.deleg A 192.0.2.103
ns4.deleg A 192.0.2.104
ns5.deleg A 192.0.2.105
ns6.deleg A 192.0.2.106
ns7.deleg A 192.0.2.107
ns8.deleg A 192.0.2.108
ns1.deleg AAAA 2001:db8::101
ns2.deleg AAAA 2001:db8::102
ns3.deleg AAAA 2001:db8::103
ns4.deleg AAAA 2001:db8::104
ns5.deleg AAAA 2001:db8::105
ns6.deleg AAAA 2001:db8::106
ns7.deleg AAAA 2001:db8::107
ns8.deleg AAAA 2001:db8::108
; a small referral: fits anywhere
small IN NS ns.small
ns.small A 192.0.2.200
` + bigTXT

// bigTXT: "big" is ~700 bytes (over 512, under 1232), "huge" ~2100 bytes
// (over 1232, under 65535).
var bigTXT = func() string {
	var b strings.Builder
	for i := range 10 {
		fmt.Fprintf(&b, "big TXT \"%02d %s\"\n", i, strings.Repeat("b", 60))
	}
	for i := range 30 {
		fmt.Fprintf(&b, "huge TXT \"%02d %s\"\n", i, strings.Repeat("h", 60))
	}
	return b.String()
}()

func parseZone(t testing.TB, text, origin string) *zones.Zone {
	t.Helper()
	z, err := zones.Parse(strings.NewReader(text), origin, origin+"zone")
	if err != nil {
		t.Fatalf("parse test zone: %v", err)
	}
	return z
}

// source is a Source whose snapshot a test can swap.
type source struct {
	p atomic.Pointer[zones.Snapshot]
}

func (s *source) Snapshot() *zones.Snapshot { return s.p.Load() }

func newSource(t testing.TB, text string) *source {
	t.Helper()
	src := &source{}
	src.p.Store(zones.NewSnapshot(parseZone(t, text, "example.com.")))
	return src
}

// newTestServer returns an unstarted server over the test zone.
func newTestServer(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Source == nil {
		o.Source = newSource(t, testZone)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// q describes a query; build packs it with miekg/dns.
type q struct {
	id     uint16
	name   string
	qtype  uint16
	qclass uint16 // 0 = IN
	rd, cd bool
	ad     bool
	opcode int
	edns   bool
	size   uint16 // 0 = 1232 when edns
	do     bool
	opts   []dns.EDNS0
	ver    uint8
}

func (x q) msg() *dns.Msg {
	m := new(dns.Msg)
	m.Id = x.id
	m.Opcode = x.opcode
	m.RecursionDesired = x.rd
	m.CheckingDisabled = x.cd
	m.AuthenticatedData = x.ad
	cl := x.qclass
	if cl == 0 {
		cl = dns.ClassINET
	}
	m.Question = []dns.Question{{Name: x.name, Qtype: x.qtype, Qclass: cl}}
	if x.edns {
		size := x.size
		if size == 0 {
			size = 1232
		}
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(size)
		o.SetDo(x.do)
		o.SetVersion(x.ver)
		o.Option = x.opts
		m.Extra = append(m.Extra, o)
	}
	return m
}

func (x q) bytes(t testing.TB) []byte {
	t.Helper()
	b, err := x.msg().Pack()
	if err != nil {
		t.Fatalf("pack query: %v", err)
	}
	return b
}

// want is a reply, field by field. RRs are written as their String() with
// runs of white space folded, compared ignoring order within a section.
type want struct {
	drop     bool
	rcode    int    // full rcode (extended included)
	hdrRcode int    // the 4 header bits, checked too
	flags    string // set header flags, in order: qr aa tc rd ra z ad cd
	opcode   int
	question string // "" = none
	answer   []string
	ns       []string
	extra    []string // OPT excluded
	opt      *wantOPT
}

type wantOPT struct {
	size    uint16
	do      bool
	ext     uint8 // extended rcode bits
	version uint8
	nsid    string // "" = no NSID option
	options int    // number of options
	ede     uint16 // Extended DNS Error info code, 0 = no EDE option
}

func flagString(m *dns.Msg) string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{
		{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"},
		{m.RecursionDesired, "rd"}, {m.RecursionAvailable, "ra"}, {m.Zero, "z"},
		{m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"},
	} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, " ")
}

func rrStrings(rrs []dns.RR) []string {
	var s []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		s = append(s, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(s)
	return s
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// check compares a raw reply with w, for a query with ID id.
func check(t *testing.T, raw []byte, id uint16, w want) {
	t.Helper()
	if w.drop {
		if len(raw) != 0 {
			t.Fatalf("reply % x, want none", raw)
		}
		return
	}
	if len(raw) < headerLen {
		t.Fatalf("reply %d bytes, want a reply", len(raw))
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		t.Fatalf("unpack reply: %v\n% x", err, raw)
	}
	if m.Id != id {
		t.Errorf("id %d, want %d", m.Id, id)
	}
	if m.Rcode != w.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[w.rcode])
	}
	if got := int(raw[3] & 0xf); got != w.hdrRcode {
		t.Errorf("header rcode %d, want %d", got, w.hdrRcode)
	}
	if got := flagString(m); got != w.flags {
		t.Errorf("flags %q, want %q", got, w.flags)
	}
	if m.Opcode != w.opcode {
		t.Errorf("opcode %d, want %d", m.Opcode, w.opcode)
	}
	var question string
	if len(m.Question) > 0 {
		qq := m.Question[0]
		question = fmt.Sprintf("%s %s %s", qq.Name, dns.ClassToString[qq.Qclass], dns.TypeToString[qq.Qtype])
	}
	if len(m.Question) > 1 {
		t.Errorf("%d questions", len(m.Question))
	}
	if question != w.question {
		t.Errorf("question %q, want %q", question, w.question)
	}
	for _, s := range []struct {
		name      string
		got, want []string
	}{
		{"answer", rrStrings(m.Answer), sorted(w.answer)},
		{"authority", rrStrings(m.Ns), sorted(w.ns)},
		{"additional", rrStrings(m.Extra), sorted(w.extra)},
	} {
		if !slices.Equal(s.got, s.want) {
			t.Errorf("%s:\n got %q\nwant %q", s.name, s.got, s.want)
		}
	}
	opt := m.IsEdns0()
	switch {
	case opt == nil && w.opt != nil:
		t.Errorf("no OPT, want one")
	case opt != nil && w.opt == nil:
		t.Errorf("OPT %v, want none", opt)
	case opt != nil:
		if n := countOPT(m); n != 1 {
			t.Errorf("%d OPT records", n)
		}
		if opt.Hdr.Name != "." {
			t.Errorf("OPT owner %q", opt.Hdr.Name)
		}
		if opt.UDPSize() != w.opt.size {
			t.Errorf("OPT size %d, want %d", opt.UDPSize(), w.opt.size)
		}
		if opt.Do() != w.opt.do {
			t.Errorf("OPT DO %v, want %v", opt.Do(), w.opt.do)
		}
		if opt.Version() != w.opt.version {
			t.Errorf("OPT version %d, want %d", opt.Version(), w.opt.version)
		}
		if ext := uint8(opt.Hdr.Ttl >> 24); ext != w.opt.ext {
			t.Errorf("OPT extended rcode %d, want %d", ext, w.opt.ext)
		}
		if z := opt.Hdr.Ttl & 0x7fff; z != 0 {
			t.Errorf("OPT Z flags %#x, want 0", z)
		}
		if len(opt.Option) != w.opt.options {
			t.Errorf("OPT has %d options %v, want %d", len(opt.Option), opt.Option, w.opt.options)
		}
		var nsid string
		for _, o := range opt.Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				b, _ := hex.DecodeString(n.Nsid)
				nsid = string(b)
			}
		}
		if nsid != w.opt.nsid {
			t.Errorf("NSID %q, want %q", nsid, w.opt.nsid)
		}
		var ede uint16
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				ede = e.InfoCode
				if e.ExtraText != "" {
					t.Errorf("EDE extra text %q, want none", e.ExtraText)
				}
			}
		}
		if ede != w.opt.ede {
			t.Errorf("EDE %d, want %d", ede, w.opt.ede)
		}
	}
}

func countOPT(m *dns.Msg) int {
	n := 0
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

func u16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }
