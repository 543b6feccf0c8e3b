package e2e

import (
	"testing"

	"github.com/miekg/dns"
)

// The exceptions must accept exactly the documented difference and nothing
// next to it. These cases run without any server: the oracle's cache is
// filled by hand.

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return rr
}

func queryOf(t *testing.T, name string, qt uint16, edit func(*dns.Msg)) *queryCase {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qt)
	if edit != nil {
		edit(m)
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return &queryCase{wire: wire, qname: name, qtype: qt, qclass: dns.ClassINET, opcode: m.Opcode, network: "udp", family: "4"}
}

func replyTo(t *testing.T, q *queryCase, edit func(*dns.Msg)) *reply {
	t.Helper()
	qm := new(dns.Msg)
	if err := qm.Unpack(q.wire); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetReply(qm)
	m.Authoritative = true
	if edit != nil {
		edit(m)
	}
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return newReply(wire, nil)
}

// accepted runs the comparison of runDifferential on one query.
func accepted(q *queryCase, ref, got *reply, o *oracle) bool {
	return acceptedBy(acceptedDifferences, q, ref, got, o)
}

func acceptedBy(exceptions []exception, q *queryCase, ref, got *reply, o *oracle) bool {
	if len(diffReplies(q, ref, got)) == 0 {
		return true
	}
	want := ref.msg.Copy()
	applied := false
	for _, e := range exceptions {
		if w, ok := e.expect(q, want, got.msg, o); ok {
			want, applied = w, true
		}
	}
	return applied && len(diffReplies(q, expectedReply(ref, want), got)) == 0
}

func TestExceptionsAreNarrow(t *testing.T) {
	o := &oracle{zones: []string{"example.com.", "example.net."}, cache: map[string]*dns.Msg{}}
	put := func(name string, qt uint16, rrs ...string) {
		m := new(dns.Msg)
		m.SetQuestion(name, qt)
		m.Response, m.Authoritative = true, true
		for _, s := range rrs {
			m.Answer = append(m.Answer, mustRR(t, s))
		}
		o.cache[name+"/"+typeString(qt)] = m
	}
	put("mail.example.com.", dns.TypeA, "mail.example.com. 3600 IN A 192.0.2.25")
	put("mail.example.com.", dns.TypeAAAA, "mail.example.com. 3600 IN AAAA 2001:db8::25")
	put("mx.example.net.", dns.TypeA, "mx.example.net. 1800 IN A 198.51.100.25")
	put("mx.example.net.", dns.TypeAAAA)

	mx := []string{"example.com. 3600 IN MX 10 mail.example.com.", "example.com. 3600 IN MX 20 mx.example.net."}
	withAnswer := func(rrs ...string) func(*dns.Msg) {
		return func(m *dns.Msg) {
			for _, s := range rrs {
				m.Answer = append(m.Answer, mustRR(t, s))
			}
		}
	}
	then := func(fs ...func(*dns.Msg)) func(*dns.Msg) {
		return func(m *dns.Msg) {
			for _, f := range fs {
				f(m)
			}
		}
	}
	extra := func(rrs ...string) func(*dns.Msg) {
		return func(m *dns.Msg) {
			for _, s := range rrs {
				m.Extra = append(m.Extra, mustRR(t, s))
			}
		}
	}
	edns := func(do bool, opts ...dns.EDNS0) func(*dns.Msg) {
		return func(m *dns.Msg) {
			m.SetEdns0(1232, do)
			m.IsEdns0().Option = append(m.IsEdns0().Option, opts...)
		}
	}

	mxq := queryOf(t, "example.com.", dns.TypeMX, nil)
	cdq := queryOf(t, "www.example.com.", dns.TypeA, func(m *dns.Msg) { m.CheckingDisabled = true })
	plainq := queryOf(t, "www.example.com.", dns.TypeA, nil)
	badq := queryOf(t, "www.example.com.", dns.TypeA, func(m *dns.Msg) { edns(true)(m); m.IsEdns0().SetVersion(1) })
	badq0 := queryOf(t, "www.example.com.", dns.TypeA, func(m *dns.Msg) { edns(false)(m); m.IsEdns0().SetVersion(1) })
	refused := func(m *dns.Msg) { m.Rcode, m.Authoritative = dns.RcodeRefused, false }
	badvers := func(do bool) func(*dns.Msg) {
		return func(m *dns.Msg) {
			m.Rcode, m.Authoritative = dns.RcodeBadVers, false
			m.SetEdns0(1232, do)
		}
	}

	notifyq := queryOf(t, "example.com.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify })
	allFlags := func(m *dns.Msg) {
		m.Authoritative, m.Truncated, m.RecursionDesired, m.RecursionAvailable = true, true, true, true
		m.Zero, m.AuthenticatedData, m.CheckingDisabled = true, true, true
	}
	op15q := queryOf(t, "example.com.", dns.TypeSOA, func(m *dns.Msg) { m.Opcode = 15; allFlags(m) })
	noQuestion := func(m *dns.Msg) { m.Question = nil }
	notimp := func(m *dns.Msg) { m.Rcode, m.Authoritative = dns.RcodeNotImplemented, false }
	// A query with QDCOUNT=0 and an OPT.
	qd0 := &queryCase{wire: []byte{0, 7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0}, network: "udp", family: "4", qclass: dns.ClassINET}
	qd0Reply := func(rcode int, withOPT bool) *reply {
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: 7, Response: true, RecursionDesired: true, Rcode: rcode}}
		if withOPT {
			m.SetEdns0(1232, false)
		}
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return newReply(wire, nil)
	}
	if !accepted(qd0, qd0Reply(dns.RcodeSuccess, true), qd0Reply(dns.RcodeFormatError, true), o) {
		t.Error("FORMERR with OPT for QDCOUNT=0 with OPT: not accepted")
	}
	if accepted(qd0, qd0Reply(dns.RcodeSuccess, true), qd0Reply(dns.RcodeFormatError, false), o) {
		t.Error("FORMERR without OPT for QDCOUNT=0 with OPT: accepted")
	}
	if accepted(qd0, qd0Reply(dns.RcodeSuccess, true), qd0Reply(dns.RcodeRefused, true), o) {
		t.Error("REFUSED for QDCOUNT=0 with OPT: accepted")
	}
	tcp0 := &queryCase{wire: []byte{0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, network: "tcp"}
	closed := &reply{err: errNoReply}
	bare := &dns.Msg{MsgHdr: dns.MsgHdr{Id: 9, Response: true, Rcode: dns.RcodeFormatError}}
	if !acceptFormErrForClosedTCP(tcp0, closed, bare) {
		t.Error("FORMERR where NSD closes TCP: not accepted")
	}
	if udp0 := (&queryCase{wire: tcp0.wire, network: "udp"}); acceptFormErrForClosedTCP(udp0, closed, bare) {
		t.Error("FORMERR where NSD sent nothing over UDP: accepted")
	}
	if wrongID := (&dns.Msg{MsgHdr: dns.MsgHdr{Id: 10, Response: true, Rcode: dns.RcodeFormatError}}); acceptFormErrForClosedTCP(tcp0, closed, wrongID) {
		t.Error("FORMERR with another ID: accepted")
	}
	if servfail := (&dns.Msg{MsgHdr: dns.MsgHdr{Id: 9, Response: true, Rcode: dns.RcodeServerFailure}}); acceptFormErrForClosedTCP(tcp0, closed, servfail) {
		t.Error("SERVFAIL where NSD closes TCP: accepted")
	}

	for _, tc := range []struct {
		name     string
		q        *queryCase
		ref, got func(*dns.Msg)
		want     bool
	}{
		{"identical", mxq, withAnswer(mx...), withAnswer(mx...), true},
		{"MX target in zone, A and AAAA", mxq, withAnswer(mx...),
			then(withAnswer(mx...), extra("mail.example.com. 3600 IN A 192.0.2.25", "mail.example.com. 3600 IN AAAA 2001:db8::25")), true},
		{"MX target in zone, only A", mxq, withAnswer(mx...),
			then(withAnswer(mx...), extra("mail.example.com. 3600 IN A 192.0.2.25")), false},
		{"MX target in another zone", mxq, withAnswer(mx...),
			then(withAnswer(mx...), extra("mail.example.com. 3600 IN A 192.0.2.25", "mail.example.com. 3600 IN AAAA 2001:db8::25",
				"mx.example.net. 1800 IN A 198.51.100.25")), false},
		{"extra record that is no target", mxq, withAnswer(mx...),
			then(withAnswer(mx...), extra("mail.example.com. 3600 IN A 192.0.2.25", "mail.example.com. 3600 IN AAAA 2001:db8::25",
				"www.example.com. 300 IN A 192.0.2.10")), false},
		{"wrong TTL in extra", mxq, withAnswer(mx...),
			then(withAnswer(mx...), extra("mail.example.com. 60 IN A 192.0.2.25", "mail.example.com. 3600 IN AAAA 2001:db8::25")), false},
		{"CD copied", cdq, nil, func(m *dns.Msg) { m.CheckingDisabled = true }, true},
		{"CD set without CD in the query", plainq, nil, func(m *dns.Msg) { m.CheckingDisabled = true }, false},
		{"CD copied but AA differs", cdq, nil, func(m *dns.Msg) { m.CheckingDisabled, m.Authoritative = true, false }, false},
		{"DO copied in BADVERS", badq, badvers(false), badvers(true), true},
		{"DO set in BADVERS without DO in the query", badq0, badvers(false), badvers(true), false},
		{"DO set in NOERROR", plainq, edns(false), edns(true), false},
		{"NOTIMP for NOTIFY, question echoed", notifyq, then(refused, noQuestion), notimp, true},
		{"NOTIMP for NOTIFY with AA set", notifyq, then(refused, noQuestion), then(notimp, func(m *dns.Msg) { m.Authoritative = true }), false},
		{"NOTIMP for a refused QUERY", plainq, refused, notimp, false},
		{"NOTIMP flags cleared", op15q, then(notimp, noQuestion, allFlags), then(notimp, noQuestion), true},
		{"NOTIMP flags cleared but RD kept", op15q, then(notimp, noQuestion, allFlags), then(notimp, noQuestion, func(m *dns.Msg) { m.RecursionDesired = true }), false},
		{"NOTIMP flags cleared and rcode changed", op15q, then(notimp, noQuestion, allFlags), then(refused, noQuestion), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, got := replyTo(t, tc.q, tc.ref), replyTo(t, tc.q, tc.got)
			if g := accepted(tc.q, ref, got, o); g != tc.want {
				t.Errorf("accepted = %v, want %v; differences: %q\nref:\n%s\ngot:\n%s", g, tc.want,
					diffReplies(tc.q, ref, got), ref, got)
			}
		})
	}
}

func TestKnotExceptionsAreNarrow(t *testing.T) {
	o := &oracle{zones: []string{"example.com."}, cache: map[string]*dns.Msg{}}
	soaRR := "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"
	soaAnswer := new(dns.Msg)
	soaAnswer.SetQuestion("example.com.", dns.TypeSOA)
	soaAnswer.Response, soaAnswer.Authoritative = true, true
	soaAnswer.Answer = []dns.RR{mustRR(t, soaRR)}
	o.cache["example.com./SOA"] = soaAnswer
	anyq := queryOf(t, "example.com.", dns.TypeANY, nil)
	mxq := queryOf(t, "mx.example.com.", dns.TypeMX, nil)
	answer := func(rrs ...string) func(*dns.Msg) {
		return func(m *dns.Msg) {
			for _, s := range rrs {
				m.Answer = append(m.Answer, mustRR(t, s))
			}
		}
	}
	extra := func(base func(*dns.Msg), rrs ...string) func(*dns.Msg) {
		return func(m *dns.Msg) {
			base(m)
			for _, s := range rrs {
				m.Extra = append(m.Extra, mustRR(t, s))
			}
		}
	}
	ns := answer("example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.net.")
	mx := answer("mx.example.com. 300 IN MX 10 mail.example.com.", "mx.example.com. 300 IN MX 20 mail.example.com.")
	mailA := "mail.example.com. 300 IN A 192.0.2.25"
	for _, tc := range []struct {
		name     string
		q        *queryCase
		ref, got func(*dns.Msg)
		want     bool
	}{
		{"ANY: another RRset, as Knot answers it", anyq, extra(ns, "ns1.example.com. 3600 IN A 192.0.2.53"), answer(soaRR), true},
		{"ANY: another RRset with other data", anyq, ns, answer("example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2 7200 3600 1209600 300"), false},
		{"ANY: two RRsets", anyq, ns, answer(soaRR, "example.com. 3600 IN NS ns1.example.com."), false},
		{"MX: repeated additional removed", mxq, extra(mx, mailA, mailA), extra(mx, mailA), true},
		{"MX: additional dropped, not only a repeat", mxq, extra(mx, mailA, mailA), mx, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, got := replyTo(t, tc.q, tc.ref), replyTo(t, tc.q, tc.got)
			if g := acceptedBy(knotDifferences, tc.q, ref, got, o); g != tc.want {
				t.Errorf("accepted = %v, want %v; differences: %q", g, tc.want, diffReplies(tc.q, ref, got))
			}
		})
	}
}
