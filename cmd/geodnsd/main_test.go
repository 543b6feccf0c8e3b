package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const testZone = `$ORIGIN example.com.
$TTL 300
@    3600 IN SOA ns1 hostmaster 1 3600 600 1209600 30
@    3600 IN NS  ns1
ns1       IN A   192.0.2.53
www    30 IN A   192.0.2.%d
`

// freePort returns a loopback port that was free for both UDP and TCP a
// moment ago, drawn below Linux's ephemeral range so that sockets bound to
// port 0 cannot take it; start still retries if something does.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

type proc struct {
	dir, dnsAddr, httpAddr string
	hup                    chan struct{}
	stdout, stderr         *syncBuffer
	done                   chan int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeConfig(t *testing.T, dir string, dnsPort, httpPort int) string {
	t.Helper()
	cfg := fmt.Sprintf(`[node]
id = "ns-test"
[dns]
listen = ["127.0.0.1:%d"]
sockets_per_address = 2
[zones]
dir = "zones"
[http]
listen = "127.0.0.1:%d"
`, dnsPort, httpPort)
	p := filepath.Join(dir, "geodnsd.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeZone(t *testing.T, dir, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "zones"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zones", "example.com.zone"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start runs geodnsd in-process and waits until it answers over DNS. A
// start that loses its ports to another process is retried on new ones.
func start(t *testing.T) *proc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n, code := tryStart(t)
		if n != nil {
			return n
		}
		if code != exitFail || attempt == 5 {
			t.Fatalf("geodnsd exited %d before answering", code)
		}
	}
}

// tryStart returns the running proc, or nil and the exit code of a run
// that ended before it answered.
func tryStart(t *testing.T) (*proc, int) {
	t.Helper()
	n := &proc{dir: t.TempDir(), hup: make(chan struct{}), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan int, 1)}
	dnsPort, httpPort := freePort(t), freePort(t)
	n.dnsAddr = fmt.Sprintf("127.0.0.1:%d", dnsPort)
	n.httpAddr = fmt.Sprintf("127.0.0.1:%d", httpPort)
	writeZone(t, n.dir, fmt.Sprintf(testZone, 1))
	cfg := writeConfig(t, n.dir, dnsPort, httpPort)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { n.done <- run(ctx, []string{"-config", cfg}, n.stdout, n.stderr, n.hup) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := n.query(t, "example.com.", dns.TypeSOA, "udp"); err == nil {
			break
		}
		select {
		case code := <-n.done:
			cancel()
			t.Logf("geodnsd exited %d before answering:\n%s", code, n.stderr)
			return nil, code
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-n.done
			t.Fatalf("geodnsd did not answer within 10s\n%s", n.stderr)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-n.done:
			if code != 0 {
				t.Errorf("geodnsd exited %d\n%s", code, n.stderr)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("geodnsd did not stop within 10s")
		}
	})
	return n, 0
}

func (n *proc) query(t *testing.T, name string, qtype uint16, network string) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, _, err := c.Exchange(m, n.dnsAddr)
	return r, err
}

func (n *proc) wwwAddr(t *testing.T) string {
	t.Helper()
	r, err := n.query(t, "www.example.com.", dns.TypeA, "udp")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
		t.Fatalf("www.example.com A: %v", r)
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok || a.Hdr.Ttl != 30 {
		t.Fatalf("www.example.com A answer %v", r.Answer[0])
	}
	return a.A.String()
}

func (n *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + n.httpAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// reload sends a SIGHUP-equivalent and waits until the loop has taken it and
// finished (the next send blocks until the loop is back in its select).
func (n *proc) reload(t *testing.T) {
	t.Helper()
	for range 2 {
		select {
		case n.hup <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatal("reload not taken within 10s")
		}
	}
}

func TestServeAndReload(t *testing.T) {
	n := start(t)
	for _, network := range []string{"udp", "tcp"} {
		r, err := n.query(t, "WWW.Example.com.", dns.TypeA, network)
		if err != nil {
			t.Fatal(err)
		}
		if r.Question[0].Name != "WWW.Example.com." || len(r.Answer) != 1 || r.Answer[0].String() != "WWW.Example.com.\t30\tIN\tA\t192.0.2.1" {
			t.Errorf("%s: answer %v", network, r)
		}
	}
	if code, body := n.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q", code, body)
	}

	// A good change is picked up on reload.
	writeZone(t, n.dir, fmt.Sprintf(strings.Replace(testZone, "SOA ns1 hostmaster 1", "SOA ns1 hostmaster 2", 1), 2))
	n.reload(t)
	if got := n.wwwAddr(t); got != "192.0.2.2" {
		t.Errorf("after reload www = %s, want 192.0.2.2", got)
	}

	// A broken change keeps the last good zone, and says where it is broken.
	writeZone(t, n.dir, fmt.Sprintf(testZone, 3)+"bad IN CNAME www\nbad IN A 192.0.2.9\n")
	n.reload(t)
	if got := n.wwwAddr(t); got != "192.0.2.2" {
		t.Errorf("after a bad reload www = %s, want the last good 192.0.2.2", got)
	}
	if !strings.Contains(n.stderr.String(), n.dir+"/zones/example.com.zone:8: bad.example.com.: CNAME and other data") {
		t.Errorf("log does not name the bad line example.com.zone:8:\n%s", n.stderr)
	}
	if _, body := n.get(t, "/metrics"); !strings.Contains(body, "geodnsd_dns_queries_total") || !strings.Contains(body, "geodnsd_zones_reloads_total") {
		t.Errorf("metrics lack query or reload counters")
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, 5353, 8053)
	writeZone(t, dir, fmt.Sprintf(testZone, 1))
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-check-config", "-config", cfg}, &out, &errb, nil); code != 0 {
		t.Fatalf("check-config of a good config = %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "zone example.com. serial 1 ok") {
		t.Errorf("check-config output %q", out.String())
	}

	writeZone(t, dir, fmt.Sprintf(testZone, 1)+"www IN CNAME ns1\n")
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"-check-config", "-config", cfg}, &out, &errb, nil); code != 2 {
		t.Errorf("check-config of a bad zone = %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "example.com.zone:7") {
		t.Errorf("bad zone error does not say where: %q", errb.String())
	}

	os.WriteFile(cfg, []byte("[node]\nid = \"ns1\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\nudp_size = \"big\"\n"), 0o644)
	errb.Reset()
	if code := run(context.Background(), []string{"-check-config", "-config", cfg}, &out, &errb, nil); code != 2 {
		t.Errorf("check-config of a bad config = %d, want 2", code)
	}
	if !strings.Contains(errb.String(), "geodnsd.toml:5") {
		t.Errorf("bad config error does not say where: %q", errb.String())
	}
}

func TestDemoConfigChecks(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-demo", "-check-config"}, &out, &errb, nil); code != 0 {
		t.Fatalf("demo check-config = %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "zone example.com.") {
		t.Errorf("demo zones: %q", out.String())
	}
}

// waitFor polls the metrics page until it contains want (or, with absent,
// until it no longer does), for at most 15 s.
func (n *proc) waitMetric(t *testing.T, want string, absent bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := n.get(t, "/metrics")
		if strings.Contains(body, want) != absent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics: %q present=%v after 15s\n%s", want, absent, n.stderr)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// TestProbesAndConfigReload: the sites of the configuration are probed (at
// a loopback address, while the endpoint answers a documentation address),
// their verdicts are exported, and SIGHUP reloads the checks; a bad config
// keeps the last good one.
func TestProbesAndConfigReload(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	n := start(t)
	cfgPath := filepath.Join(n.dir, "geodnsd.toml")
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf(`
[sites.dallas]
endpoints = [{ name = "dal1", address = "192.0.2.10", probe = "127.0.0.1" }]
[[sites.dallas.checks]]
name = "web"
type = "tcp"
port = %d
interval = "1s"
rise = 1
`, backend.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(cfgPath, append(append([]byte{}, base...), site...), 0o644); err != nil {
		t.Fatal(err)
	}
	n.reload(t)
	up := `geodnsd_health_verdict{check="web",endpoint="dal1",site="dallas"} 1`
	n.waitMetric(t, up, false)

	// A broken file changes nothing and says where it is broken.
	os.WriteFile(cfgPath, append(append([]byte{}, base...), (site+"bogus = 1\n")...), 0o644)
	n.reload(t)
	if !strings.Contains(n.stderr.String(), "geodnsd.toml:19: sites.dallas.checks[0].bogus: unknown key") {
		t.Errorf("bad reload not reported with its position:\n%s", n.stderr)
	}
	n.waitMetric(t, up, false)

	// Removing the site stops its check.
	os.WriteFile(cfgPath, base, 0o644)
	n.reload(t)
	n.waitMetric(t, `geodnsd_health_verdict{check="web"`, true)
}

// TestFlagsThatExit: -h and -version exit 0; -make-certs writes a CA and a
// certificate per node, and refuses a malformed -nodes with exit 2.
func TestFlagsThatExit(t *testing.T) {
	ctx := context.Background()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"-h"}, &out, &errb, nil); code != exitOK || !strings.Contains(errb.String(), "-check-config") {
		t.Errorf("-h: exit %d, usage %q", code, errb.String())
	}
	out.Reset()
	if code := run(ctx, []string{"-version"}, &out, &errb, nil); code != exitOK || !strings.HasPrefix(out.String(), "geodnsd ") {
		t.Errorf("-version: exit %d, %q", code, out.String())
	}
	errb.Reset()
	missing := filepath.Join(t.TempDir(), "missing.toml")
	if code := run(ctx, []string{"-check-config", missing}, &out, &errb, nil); code != exitConfig || !strings.Contains(errb.String(), missing) {
		t.Errorf("-check-config FILE: exit %d, %q (want the file checked)", code, errb.String())
	}
	dir := filepath.Join(t.TempDir(), "certs")
	out.Reset()
	if code := run(ctx, []string{"-make-certs", dir, "-nodes", "ns1=127.0.0.11,ns2=127.0.0.12"}, &out, &errb, nil); code != exitOK {
		t.Fatalf("-make-certs: exit %d: %s", code, errb.String())
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "ns1.pem", "ns1-key.pem", "ns2.pem", "ns2-key.pem"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("-make-certs did not write %s: %v", f, err)
		}
	}
	errb.Reset()
	if code := run(ctx, []string{"-make-certs", dir, "-nodes", "ns3"}, &out, &errb, nil); code != exitConfig || !strings.Contains(errb.String(), "want id=ip") {
		t.Errorf("-make-certs with a bad -nodes: exit %d, %q", code, errb.String())
	}
}
