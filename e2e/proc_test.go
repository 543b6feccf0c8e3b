package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// proc is one server process started by a test. It runs in its own process
// group so that stop reaches its children too (NSD forks xfrd and servers).
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
	stopped bool // stop was asked: an exit after it is expected
	mu      sync.Mutex
}

// startProc starts argv in dir with stdout and stderr appended to
// dir/name.log, and registers its stop with t.Cleanup. When cleanExit is set
// the process must exit with status 0 after SIGTERM (graceful shutdown).
func startProc(t testing.TB, name, dir string, cleanExit bool, argv ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t, cleanExit) })
	return p
}

// stop sends SIGTERM to the process group, waits up to 10 s, then kills the
// group. Every process of the group is sent SIGKILL at the end in any case,
// so that no child outlives the test.
func (p *proc) stop(t testing.TB, cleanExit bool) {
	pgid := p.cmd.Process.Pid
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	exitedBefore := false
	select {
	case <-p.done:
		exitedBefore = true
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	graceful := true
	select {
	case <-p.done:
	case <-timer.C:
		graceful = false
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // children that ignored SIGTERM
	if !cleanExit || exitedBefore {
		return
	}
	switch err := p.exitErr(); {
	case !graceful:
		t.Errorf("%s: did not exit within 10 s of SIGTERM; log tail:\n%s", p.name, p.logTail())
	case err != nil:
		t.Errorf("%s: exit after SIGTERM: %v (want status 0); log tail:\n%s", p.name, err, p.logTail())
	}
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// logTail returns the last 4 KiB of the process's log.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// freePort returns a port that is free for both UDP and TCP on 127.0.0.1 and,
// when withV6 is set, on ::1. It is drawn below Linux's ephemeral range
// (32768-60999 by default), so that no socket bound to port 0 (every other
// test's clients and listeners) can take it between this check and the
// server's start; the servers' start-up fails loudly if anything does.
func freePort(t *testing.T, withV6 bool) int {
	t.Helper()
	for range 50 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		closers := []io.Closer{l}
		ok := true
		hosts := []string{"127.0.0.1"}
		if withV6 {
			hosts = append(hosts, "::1")
		}
		for _, h := range hosts {
			addr := net.JoinHostPort(h, strconv.Itoa(port))
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				ok = false
				break
			}
			closers = append(closers, u)
			if h != "127.0.0.1" {
				tl, err := net.Listen("tcp", addr)
				if err != nil {
					ok = false
					break
				}
				closers = append(closers, tl)
			}
		}
		for _, c := range closers {
			c.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("free port: no port free for UDP and TCP after 50 tries")
	return 0
}

// haveIPv6Loopback tells whether ::1 can be bound.
func haveIPv6Loopback() bool {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// waitReady polls addr (UDP) until every zone's SOA is answered
// authoritatively, the process exits, or the deadline passes.
func waitReady(t *testing.T, p *proc, addr string, zones []string, deadline time.Duration) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(deadline)
	defer limit.Stop()
	var last error
	for {
		last = allZonesAnswer(addr, zones)
		if last == nil {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before it answered (%v); log tail:\n%s", p.name, p.exitErr(), p.logTail())
		case <-limit.C:
			t.Fatalf("%s: not answering on %s after %v: %v; log tail:\n%s", p.name, addr, deadline, last, p.logTail())
		case <-tick.C:
		}
	}
}

func allZonesAnswer(addr string, zones []string) error {
	for _, z := range zones {
		q := new(dns.Msg)
		q.SetQuestion(z, dns.TypeSOA)
		wire, err := q.Pack()
		if err != nil {
			return err
		}
		raw, err := exchange("udp", addr, wire, 200*time.Millisecond)
		if err != nil {
			return fmt.Errorf("%s SOA: %w", z, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			return fmt.Errorf("%s SOA: %w", z, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
			return fmt.Errorf("%s SOA: not yet authoritative: rcode %s aa=%v answers=%d",
				z, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer))
		}
	}
	return nil
}

// copyZones copies the corpus zone files into dir/zones and returns that
// directory; every server gets its own copy of the same bytes.
func copyZones(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, "zones")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range zoneFiles(t) {
		b, err := os.ReadFile(filepath.Join("testdata", "zones", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// zoneFiles lists testdata/zones/*.zone.
func zoneFiles(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("testdata", "zones", "*.zone"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no zone files in testdata/zones (%v)", err)
	}
	out := make([]string, len(m))
	for i, f := range m {
		out[i] = filepath.Base(f)
	}
	return out
}

// zoneOrigins returns the origins of the corpus zones, from their file names.
func zoneOrigins(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range zoneFiles(t) {
		out = append(out, dns.Fqdn(f[:len(f)-len(".zone")]))
	}
	return out
}

var errNoReply = errors.New("no reply")

// exchange sends one raw message and returns the raw reply. Over TCP the
// message is framed with its 2-byte length; a connection closed without a
// reply (EOF or reset), or a timeout, is errNoReply.
func exchange(network, addr string, msg []byte, timeout time.Duration) ([]byte, error) {
	conn, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if network == "tcp" {
		framed := make([]byte, 2+len(msg))
		framed[0], framed[1] = byte(len(msg)>>8), byte(len(msg))
		copy(framed[2:], msg)
		if _, err := conn.Write(framed); err != nil {
			return nil, err
		}
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, noReply(err)
		}
		buf := make([]byte, int(l[0])<<8|int(l[1]))
		if _, err := io.ReadFull(conn, buf); err != nil {
			return nil, fmt.Errorf("tcp: short reply: %w", err)
		}
		return buf, nil
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for range 16 { // skip stray datagrams whose ID is not ours
		n, err := conn.Read(buf)
		if err != nil {
			return nil, noReply(err)
		}
		if n >= 2 && len(msg) >= 2 && buf[0] == msg[0] && buf[1] == msg[1] || n < 2 {
			return bytes.Clone(buf[:n]), nil
		}
	}
	return nil, errors.New("udp: only replies with other IDs")
}

func noReply(err error) error {
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne) && ne.Timeout() {
		return errNoReply
	}
	return err
}
