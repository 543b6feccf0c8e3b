package dnsserver

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/zones"
)

// TestNotify: when a zone's serial changes, each listed secondary gets a
// NOTIFY for it (opcode NOTIFY, AA, the zone's SOA question, the new serial
// as a hint) and it is resent until acknowledged; the zones present at
// start are not announced.
func TestNotify(t *testing.T) {
	sec, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sec.Close()
	src := newSource(t, testZone)
	s := startServer(t, Options{
		Source:         src,
		Listen:         []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		Notify:         []netip.AddrPort{sec.LocalAddr().(*net.UDPAddr).AddrPort()},
		NotifyInterval: 10 * time.Millisecond,
	}, false)
	_ = s

	// Serial 2024010101 -> 2024010102.
	changed := strings.Replace(testZone, "2024010101", "2024010102", 1)
	src.p.Store(zones.NewSnapshot(parseZone(t, changed, "example.com.")))

	buf := make([]byte, 512)
	read := func() (*dns.Msg, net.Addr) {
		t.Helper()
		_ = sec.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := sec.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no NOTIFY: %v", err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		return m, from
	}
	first, _ := read()
	if first.Opcode != dns.OpcodeNotify || !first.Authoritative || first.Response || len(first.Question) != 1 ||
		first.Question[0].Name != "example.com." || first.Question[0].Qtype != dns.TypeSOA {
		t.Fatalf("not a NOTIFY for example.com. SOA:\n%v", first)
	}
	if len(first.Answer) != 1 || first.Answer[0].(*dns.SOA).Serial != 2024010102 {
		t.Errorf("answer %v, want the new serial", first.Answer)
	}
	// Not acknowledged: it comes again, with the same ID; then acknowledge.
	again, from := read()
	if again.Id != first.Id || again.Opcode != dns.OpcodeNotify {
		t.Fatalf("retry %v, want the same NOTIFY", again)
	}
	ack := new(dns.Msg)
	ack.SetReply(again)
	b, _ := ack.Pack()
	if _, err := sec.WriteTo(b, from); err != nil {
		t.Fatal(err)
	}
}
