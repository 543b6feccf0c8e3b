package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// reply is what one server sent back for one query.
type reply struct {
	raw       []byte
	err       error    // errNoReply, or a transport error
	msg       *dns.Msg // nil when raw could not be parsed
	unpackErr error
}

func newReply(raw []byte, err error) *reply {
	r := &reply{raw: raw, err: err}
	if err != nil {
		return r
	}
	m := new(dns.Msg)
	if uerr := m.Unpack(raw); uerr != nil {
		r.unpackErr = uerr
		return r
	}
	r.msg = m
	return r
}

func (r *reply) String() string {
	switch {
	case r == nil:
		return "(not asked)"
	case r.err != nil:
		return "(" + r.err.Error() + ")"
	case r.msg == nil:
		return fmt.Sprintf("(unparseable reply: %v)\n% x", r.unpackErr, r.raw)
	}
	return r.msg.String()
}

// diffReplies lists every difference between the reference reply and the
// reply under test, for query q. An empty list means they are equivalent.
func diffReplies(q *queryCase, ref, got *reply) []string {
	var d []string
	add := func(format string, a ...any) { d = append(d, fmt.Sprintf(format, a...)) }
	switch {
	case ref.err != nil || got.err != nil:
		if !sameErr(ref.err, got.err) {
			add("reply: reference %s, under test %s", errStr(ref.err), errStr(got.err))
		}
		return d
	case ref.msg == nil || got.msg == nil:
		if !bytes.Equal(maskID(ref.raw), maskID(got.raw)) {
			add("unparseable reply: reference %v, under test %v", ref.unpackErr, got.unpackErr)
		}
		return d
	}
	r, g := ref.msg, got.msg
	if len(q.wire) >= 2 {
		qid := uint16(q.wire[0])<<8 | uint16(q.wire[1])
		if g.Id != qid {
			add("id: under test %d, query %d", g.Id, qid)
		}
		if r.Id != qid {
			add("id: reference %d, query %d", r.Id, qid)
		}
	}
	if r.Opcode != g.Opcode {
		add("opcode: %s vs %s", opcodeString(r.Opcode), opcodeString(g.Opcode))
	}
	if r.Rcode != g.Rcode {
		add("rcode: %s vs %s", rcodeString(r.Rcode), rcodeString(g.Rcode))
	}
	for _, f := range []struct {
		name string
		a, b bool
	}{
		{"qr", r.Response, g.Response}, {"aa", r.Authoritative, g.Authoritative},
		{"tc", r.Truncated, g.Truncated}, {"rd", r.RecursionDesired, g.RecursionDesired},
		{"ra", r.RecursionAvailable, g.RecursionAvailable}, {"ad", r.AuthenticatedData, g.AuthenticatedData},
		{"cd", r.CheckingDisabled, g.CheckingDisabled}, {"z", r.Zero, g.Zero},
	} {
		if f.a != f.b {
			add("flag %s: %v vs %v", f.name, f.a, f.b)
		}
	}
	rq, rerr := rawQuestion(ref.raw)
	gq, gerr := rawQuestion(got.raw)
	if rerr != nil || gerr != nil || !bytes.Equal(rq, gq) {
		add("question section (bytes): % x vs % x (%v, %v)", rq, gq, rerr, gerr)
	}
	diffSet(&d, "answer", r.Answer, g.Answer)
	diffSet(&d, "authority", r.Ns, g.Ns)
	diffSet(&d, "additional", withoutOPT(r.Extra), withoutOPT(g.Extra))
	ro, go_ := r.IsEdns0(), g.IsEdns0()
	switch {
	case (ro == nil) != (go_ == nil):
		add("OPT: present %v vs %v", ro != nil, go_ != nil)
	case ro != nil:
		if ro.Version() != go_.Version() {
			add("OPT version: %d vs %d", ro.Version(), go_.Version())
		}
		if ro.Do() != go_.Do() {
			add("OPT DO: %v vs %v", ro.Do(), go_.Do())
		}
		if ro.UDPSize() != go_.UDPSize() {
			add("OPT udp size: %d vs %d", ro.UDPSize(), go_.UDPSize())
		}
		if ro.Z() != go_.Z() {
			add("OPT flags (Z): %#x vs %#x", ro.Z(), go_.Z())
		}
		if a, b := optionStrings(ro), optionStrings(go_); !slices.Equal(a, b) {
			add("OPT options: %q vs %q", a, b)
		}
	}
	if n := countOPT(r.Extra); n > 1 {
		add("reference: %d OPT records", n)
	}
	if n := countOPT(g.Extra); n > 1 {
		add("under test: %d OPT records", n)
	}
	return d
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return errors.Is(a, errNoReply) == errors.Is(b, errNoReply)
}

func errStr(err error) string {
	if err == nil {
		return "a reply"
	}
	return err.Error()
}

func maskID(b []byte) []byte {
	if len(b) < 2 {
		return b
	}
	c := bytes.Clone(b)
	c[0], c[1] = 0, 0
	return c
}

func rcodeString(rc int) string {
	if rc == dns.RcodeBadVers {
		return "BADVERS" // 16 is also BADSIG, which miekg/dns prints
	}
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// rawQuestion returns the bytes of the question section of a wire message
// (all qdcount questions), so that 0x20 case is compared byte for byte.
func rawQuestion(b []byte) ([]byte, error) {
	if len(b) < 12 {
		return nil, errors.New("short message")
	}
	qd := int(b[4])<<8 | int(b[5])
	off := 12
	for range qd {
		for { // labels; a pointer ends the name
			if off >= len(b) {
				return nil, errors.New("question runs past the end")
			}
			l := int(b[off])
			if l == 0 {
				off++
				break
			}
			if l&0xc0 == 0xc0 {
				off += 2
				break
			}
			off += 1 + l
		}
		off += 4
		if off > len(b) {
			return nil, errors.New("question runs past the end")
		}
	}
	return b[12:off], nil
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

func countOPT(rrs []dns.RR) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

func optionStrings(o *dns.OPT) []string {
	var s []string
	for _, opt := range o.Option {
		s = append(s, fmt.Sprintf("%d:%s", opt.Option(), opt.String()))
	}
	sort.Strings(s)
	return s
}

// diffSet compares two sections as multisets of canonical RR strings.
func diffSet(d *[]string, section string, ref, got []dns.RR) {
	a, b := rrStrings(ref), rrStrings(got)
	if slices.Equal(a, b) {
		return
	}
	onlyA, onlyB := multisetDiff(a, b)
	var parts []string
	for _, s := range onlyA {
		parts = append(parts, "\n      only in reference:  "+s)
	}
	for _, s := range onlyB {
		parts = append(parts, "\n      only in under test: "+s)
	}
	*d = append(*d, section+":"+strings.Join(parts, ""))
}

func rrStrings(rrs []dns.RR) []string {
	s := make([]string, len(rrs))
	for i, rr := range rrs {
		s[i] = canonicalRR(rr)
	}
	sort.Strings(s)
	return s
}

func multisetDiff(a, b []string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, s := range a {
		if count[s] > 0 {
			onlyA = append(onlyA, s)
			count[s]--
		}
	}
	for _, s := range b {
		if count[s] < 0 {
			onlyB = append(onlyB, s)
			count[s]++
		}
	}
	return onlyA, onlyB
}

// canonicalRR renders rr with its owner and the domain names in its RDATA
// in lower case (case there is not significant, and a server's name
// compression may copy the 0x20 case of the question into them). TTLs and
// everything else are kept exactly.
func canonicalRR(rr dns.RR) string {
	c := dns.Copy(rr)
	h := c.Header()
	h.Name = strings.ToLower(h.Name)
	switch x := c.(type) {
	case *dns.NS:
		x.Ns = strings.ToLower(x.Ns)
	case *dns.CNAME:
		x.Target = strings.ToLower(x.Target)
	case *dns.DNAME:
		x.Target = strings.ToLower(x.Target)
	case *dns.MX:
		x.Mx = strings.ToLower(x.Mx)
	case *dns.SRV:
		x.Target = strings.ToLower(x.Target)
	case *dns.PTR:
		x.Ptr = strings.ToLower(x.Ptr)
	case *dns.SOA:
		x.Ns, x.Mbox = strings.ToLower(x.Ns), strings.ToLower(x.Mbox)
	}
	return c.String()
}
