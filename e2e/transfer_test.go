package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// xfrZone is a zone that changes during TestTransferToNSDSecondary.
const xfrZone = `$ORIGIN xfr.test.
$TTL 300
@    SOA ns1.xfr.test. hostmaster.xfr.test. %d 1 1 1209600 30
@    NS  ns1
ns1  A   192.0.2.53
www  A   192.0.2.%d
%s`

// TestTransferToNSDSecondary: a real NSD, configured as a secondary of
// geodnsd for every corpus zone (request-xfr with a TSIG key, which geodnsd
// then requires; its refresh timer held at an hour, so only a NOTIFY makes
// it look again), pulls the zones over TCP, signed, and
// then answers every query of the corpus as NSD answers from the zone
// files (the exceptions of TestPeerNSD), so what was transferred is the
// whole zone. A change of a zone (serial and data, SIGHUP) reaches the
// secondary through geodnsd's NOTIFY (dns.notify).
func TestTransferToNSDSecondary(t *testing.T) {
	t.Parallel()
	v6 := haveIPv6Loopback()

	gdir := t.TempDir()
	zonesDir := copyZones(t, gdir)
	writeXfr := func(serial int, extra string) {
		t.Helper()
		text := fmt.Sprintf(xfrZone, serial, serial, extra)
		if err := os.WriteFile(filepath.Join(zonesDir, "xfr.test.zone"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeXfr(1, "")
	nsdPort := freePort(t, v6)
	const keyName, keySecret = "xfr.key.", "c2VjcmV0LWtleS1mb3ItZ2VvZG5zZC10ZXN0cw=="
	primary := runGeodnsd(t, "geodnsd-primary", gdir, v6,
		fmt.Sprintf("transfer_allow = [\"127.0.0.1/32\"]\nnotify = [\"127.0.0.1:%d\"]\n"+
			"tsig_keys = [{ name = %q, algorithm = \"hmac-sha256\", secret = %q }]", nsdPort, keyName, keySecret))

	ndir := t.TempDir()
	nzones := filepath.Join(ndir, "zones")
	if err := os.MkdirAll(nzones, 0o755); err != nil {
		t.Fatal(err)
	}
	var zones strings.Builder
	fmt.Fprintf(&zones, "key:\n  name: %s\n  algorithm: hmac-sha256\n  secret: %q\n", keyName, keySecret)
	host, port, err := net.SplitHostPort(primary.v4)
	if err != nil {
		t.Fatal(err)
	}
	for _, origin := range append(zoneOrigins(t), "xfr.test.") {
		name := strings.TrimSuffix(origin, ".")
		fmt.Fprintf(&zones, "zone:\n  name: %s\n  zonefile: %s.zone\n  request-xfr: AXFR %s@%s %s\n  allow-notify: %s NOKEY\n"+
			"  min-refresh-time: 3600\n  max-refresh-time: 3600\n  min-retry-time: 1\n  max-retry-time: 1\n",
			name, name, host, port, keyName, host)
	}
	secondary := runNSD(t, "nsd-secondary", ndir, nzones, v6, nsdPort, zones.String())

	// NSD picks the RRset of an ANY answer in the order it loaded them,
	// which a transfer changes: any-rrset-choice accepts geodnsd's pick when
	// the secondary answers that RRset alike. Transfers themselves are
	// allowed here (from 127.0.0.1) on the primary only, NOTIFY on the
	// secondary only: left out.
	var exceptions []exception
	for _, e := range acceptedDifferences {
		if e.name == "additional-for-in-zone-targets" {
			exceptions = append(exceptions, exception{"any-rrset-choice", expectAnyRRsetChoice})
		}
		exceptions = append(exceptions, e)
	}
	runDifferential(t, secondary, primary, exceptions, func(q *queryCase) bool {
		return q.qtype != dns.TypeAXFR && q.qtype != dns.TypeIXFR && q.opcode != dns.OpcodeNotify
	})

	// A change: a new serial and a new record, loaded on SIGHUP.
	if ans := soaAndTXT(t, secondary.v4); ans != "1 " {
		t.Fatalf("secondary before the change: %q, want serial 1 and no TXT", ans)
	}
	writeXfr(2, "new TXT \"after the change\"\n")
	if err := primary.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ans := soaAndTXT(t, secondary.v4)
		if ans == `2 "after the change"` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the secondary did not follow the change (NOTIFY) within 30 s: %q; primary log:\n%s\nsecondary log:\n%s",
				ans, primary.proc.logTail(), secondary.proc.logTail())
		}
		time.Sleep(100 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// soaAndTXT asks addr for the serial of xfr.test. and the TXT of
// new.xfr.test.: "serial txt".
func soaAndTXT(t *testing.T, addr string) string {
	t.Helper()
	var serial, txt string
	for _, q := range []struct {
		name string
		qt   uint16
	}{{"xfr.test.", dns.TypeSOA}, {"new.xfr.test.", dns.TypeTXT}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qt)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := exchangeRetry("udp", addr, wire, time.Second)
		if err != nil {
			return err.Error()
		}
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			return err.Error()
		}
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.SOA:
				serial = fmt.Sprint(v.Serial)
			case *dns.TXT:
				txt = `"` + strings.Join(v.Txt, "") + `"`
			}
		}
	}
	return serial + " " + txt
}
