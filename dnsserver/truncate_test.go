package dnsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// fitZone has a CNAME whose target's RRset is too big for 1232 bytes and
// one too big for any message (about 80 kB).
var fitZone = func() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 1 7200 3600 1209600 300
@ NS ns1
ns1 A 192.0.2.1
alias CNAME big
toobig-alias CNAME toobig
`)
	for i := range 40 {
		fmt.Fprintf(&b, "big TXT \"%02d %s\"\n", i, strings.Repeat("b", 60))
	}
	for i := range 1200 {
		fmt.Fprintf(&b, "toobig TXT \"%04d %s\"\n", i, strings.Repeat("t", 60))
	}
	return b.String()
}()

// TestTruncationKeepsWhatFits: as NSD and Knot, a UDP reply that does not
// fit keeps the whole RRsets that fit (the CNAME) with TC=1; over TCP the
// whole answer comes.
func TestTruncationKeepsWhatFits(t *testing.T) {
	s := newTestServer(t, Options{Source: newSource(t, fitZone)})
	udp := s.newUDPWorker()
	tcp := s.h.newWorker(protoTCP, nil, s.tcpCtr)
	cname := "alias.example.com. 300 IN CNAME big.example.com."

	out := udp.respond(nil, q{id: 1, name: "alias.example.com.", qtype: dns.TypeTXT, edns: true}.bytes(t))
	check(t, out, 1, want{flags: "qr aa tc", question: "alias.example.com. IN TXT", answer: []string{cname}, opt: optPlain})

	out = udp.respond(nil, q{id: 2, name: "alias.example.com.", qtype: dns.TypeTXT}.bytes(t))
	check(t, out, 2, want{flags: "qr aa tc", question: "alias.example.com. IN TXT", answer: []string{cname}})

	out = tcp.respond(nil, q{id: 3, name: "alias.example.com.", qtype: dns.TypeTXT}.bytes(t))
	m := new(dns.Msg)
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if m.Truncated || len(m.Answer) != 41 {
		t.Errorf("tcp: tc %v, %d answers, want the CNAME and 40 TXT", m.Truncated, len(m.Answer))
	}
}

// TestReplyTooBigForAnyMessage: an RRset over 64 kB loads (each record
// packs) but fits no message; the reply is TC with what fits, on UDP and
// TCP alike, never a silent SERVFAIL.
func TestReplyTooBigForAnyMessage(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newTestServer(t, Options{Source: newSource(t, fitZone), Registry: reg})
	udp := s.newUDPWorker()
	tcp := s.h.newWorker(protoTCP, nil, s.tcpCtr)
	for i, w := range []*worker{udp, tcp} {
		id := uint16(10 + i)
		out := w.respond(nil, q{id: id, name: "toobig-alias.example.com.", qtype: dns.TypeTXT}.bytes(t))
		check(t, out, id, want{flags: "qr aa tc", question: "toobig-alias.example.com. IN TXT",
			answer: []string{"toobig-alias.example.com. 300 IN CNAME toobig.example.com."}})
	}
	if got := metricValue(t, reg, "geodnsd_dns_reply_errors_total", nil); got != 0 {
		t.Errorf("reply errors %v, want 0", got)
	}
}

// TestReplyBuildErrorLoggedOnceAndCounted: a reply that cannot be built is
// SERVFAIL, counted every time, logged once.
func TestReplyBuildErrorLoggedOnceAndCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs strings.Builder
	s := newTestServer(t, Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s.h.failPack = errors.New("injected pack failure")
	w := s.newUDPWorker()
	for i := range 3 {
		id := uint16(20 + i)
		out := w.respond(nil, q{id: id, name: "www.example.com.", qtype: dns.TypeA, rd: true}.bytes(t))
		check(t, out, id, want{rcode: 2, hdrRcode: 2, flags: "qr rd", question: "www.example.com. IN A"})
	}
	if got := metricValue(t, reg, "geodnsd_dns_reply_errors_total", nil); got != 3 {
		t.Errorf("reply errors %v, want 3", got)
	}
	if n := strings.Count(logs.String(), "injected pack failure"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "qname=www.example.com.") {
		t.Errorf("log does not name the question:\n%s", logs.String())
	}
}
