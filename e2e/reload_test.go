package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const reloadZone = `$ORIGIN reload.test.
$TTL 300
@    3600 IN SOA ns1 hostmaster %d 3600 600 1209600 30
@    3600 IN NS  ns1
ns1       IN A   192.0.2.53
www    30 IN A   192.0.2.%d
`

// TestSIGHUPReload drives the real binary with real signals: SIGHUP swaps in
// a changed zone; a broken change keeps serving the last good zone, logs
// where it is broken and shows in the load-error metric; SIGTERM exits 0
// (checked by the process cleanup).
func TestSIGHUPReload(t *testing.T) {
	bin := buildGeodnsd(t)
	dir := t.TempDir()
	zonePath := filepath.Join(dir, "zones", "reload.test.zone")
	if err := os.MkdirAll(filepath.Dir(zonePath), 0o755); err != nil {
		t.Fatal(err)
	}
	writeZone := func(serial, host int, extra string) {
		t.Helper()
		if err := os.WriteFile(zonePath, []byte(fmt.Sprintf(reloadZone, serial, host)+extra), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeZone(1, 1, "")
	port, httpPort := freePort(t, false), freePort(t, false)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := fmt.Sprintf("[node]\nid = %q\n[dns]\nlisten = [%q]\n[zones]\ndir = \"zones\"\n[http]\nlisten = \"127.0.0.1:%d\"\n", nodeID, addr, httpPort)
	confPath := filepath.Join(dir, "geodnsd.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "geodnsd", dir, true, bin, "-config", confPath)
	waitReady(t, p, addr, []string{"reload.test."}, readyDeadline)

	answer := func() (serial uint32, a string) {
		t.Helper()
		for _, qt := range []uint16{dns.TypeSOA, dns.TypeA} {
			q := new(dns.Msg)
			q.SetQuestion(map[uint16]string{dns.TypeSOA: "reload.test.", dns.TypeA: "www.reload.test."}[qt], qt)
			r, err := dns.Exchange(q, addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
				t.Fatalf("unexpected reply: %v", r)
			}
			switch rr := r.Answer[0].(type) {
			case *dns.SOA:
				serial = rr.Serial
			case *dns.A:
				a = rr.A.String()
			}
		}
		return serial, a
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s; log tail:\n%s", what, p.logTail())
			}
			time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
		}
	}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	metrics := func() string {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", httpPort))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	if s, a := answer(); s != 1 || a != "192.0.2.1" {
		t.Fatalf("before reload: serial %d, www %s", s, a)
	}

	writeZone(2, 2, "")
	hup()
	waitFor("the changed zone after SIGHUP", func() bool { s, a := answer(); return s == 2 && a == "192.0.2.2" })

	// Line 7 makes "www" a CNAME next to its A record.
	writeZone(3, 3, "www IN CNAME ns1\n")
	hup()
	loadError := `geodnsd_zones_load_errors{file="reload.test.zone"} 1`
	waitFor("the load error in the metrics", func() bool { return strings.Contains(metrics(), loadError) })
	if s, a := answer(); s != 2 || a != "192.0.2.2" {
		t.Errorf("after a broken reload: serial %d, www %s; want the last good zone (2, 192.0.2.2)", s, a)
	}
	if log := p.logTail(); !strings.Contains(log, zonePath+":7:") {
		t.Errorf("the log does not say where the zone is broken (%s:7):\n%s", zonePath, log)
	}

	writeZone(4, 4, "")
	hup()
	waitFor("the repaired zone after SIGHUP", func() bool { s, a := answer(); return s == 4 && a == "192.0.2.4" })
	if m := metrics(); strings.Contains(m, loadError) {
		t.Errorf("load error still set after the repair")
	}
}
