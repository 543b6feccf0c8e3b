package e2e

// A harness for the six-node lab as six real geodnsd processes: the lab's
// files (certificates, configs, zone, GeoIP2 database) written by
// lab.Prepare, its backends run by the test (lab.Backends), failoverctl run
// as an operator would type it.

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/lab"
	"github.com/geodnsd/geodnsd/web/api"
)

var buildOnce struct {
	sync.Mutex
	geodnsd, failoverctl string
}

// buildBinaries builds geodnsd and failoverctl once per test binary.
func buildBinaries(t testing.TB) (geodnsd, failoverctl string) {
	t.Helper()
	buildOnce.Lock()
	defer buildOnce.Unlock()
	if buildOnce.geodnsd != "" {
		return buildOnce.geodnsd, buildOnce.failoverctl
	}
	dir, err := os.MkdirTemp("", "geodnsd-e2e-bin-")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"geodnsd", "failoverctl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, c), "./cmd/"+c)
		cmd.Dir = ".."
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", c, err, b)
		}
	}
	buildOnce.geodnsd, buildOnce.failoverctl = filepath.Join(dir, "geodnsd"), filepath.Join(dir, "failoverctl")
	return buildOnce.geodnsd, buildOnce.failoverctl
}

// labCluster is a running lab: six geodnsd processes and the backends.
type labCluster struct {
	t       testing.TB
	l       *lab.Layout
	be      *lab.Backends
	bin     string
	ctl     string
	mu      sync.Mutex
	procs   map[string]*proc
	started map[string]int // starts per node, for log names
}

// startLab prepares a lab in network 127.0.o.Net.0/24 and starts every node.
func startLab(t *testing.T, o lab.Options) *labCluster {
	t.Helper()
	return startLabWith(t, o, nil)
}

// startLabWith is startLab with a chance to edit the lab's files before the
// nodes start.
func startLabWith(t testing.TB, o lab.Options, edit func(*lab.Layout)) *labCluster {
	t.Helper()
	bin, ctl := buildBinaries(t)
	l, err := lab.Prepare(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(l)
	}
	if out, err := exec.Command(bin, "-check-config", "-config", l.Nodes[0].Config).CombinedOutput(); err != nil {
		t.Fatalf("geodnsd -check-config: %v\n%s", err, out)
	}
	be, err := lab.StartBackends(l.Sites, nil)
	if err != nil {
		t.Fatalf("backends: %v", err)
	}
	t.Cleanup(be.Stop)
	c := &labCluster{t: t, l: l, be: be, bin: bin, ctl: ctl, procs: map[string]*proc{}, started: map[string]int{}}
	for _, n := range l.Nodes {
		c.start(n.ID)
	}
	c.waitReady(c.ids()...)
	return c
}

func (c *labCluster) ids() []string {
	var ids []string
	for _, n := range c.l.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

func (c *labCluster) node(id string) lab.NodeSpec {
	for _, n := range c.l.Nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("no node %s", id)
	return lab.NodeSpec{}
}

// start starts node id's process.
func (c *labCluster) start(id string) {
	c.t.Helper()
	c.mu.Lock()
	c.started[id]++
	name := fmt.Sprintf("%s-%d", id, c.started[id])
	c.mu.Unlock()
	p := startProc(c.t, name, c.l.Dir, false, c.bin, "-config", c.node(id).Config)
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
}

// kill ends node id's process at once (SIGKILL: a crash, no goodbye).
func (c *labCluster) kill(id string) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s did not die", id)
	}
}

// waitReady waits until every node named answers /readyz with 200.
func (c *labCluster) waitReady(ids ...string) {
	c.t.Helper()
	c.waitFor(30*time.Second, "nodes ready", func() error {
		for _, id := range ids {
			resp, err := http.Get("http://" + c.node(id).HTTP.String() + "/readyz")
			if err != nil {
				return fmt.Errorf("%s: %v", id, err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s: readyz %d", id, resp.StatusCode)
			}
		}
		return nil
	})
}

// waitFor polls cond every 50 ms until it returns nil, failing the test
// with its last error after d.
func (c *labCluster) waitFor(d time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %s, still not %s: %v\n%s", d, what, err, c.logTails())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *labCluster) logTails() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, id := range slices.Sorted(maps.Keys(c.procs)) {
		fmt.Fprintf(&b, "--- %s log (tail):\n%s\n", id, c.procs[id].logTail())
	}
	return b.String()
}

// answer asks node id for name/qtype (with an ECS option for ecs when it is
// valid) and returns the sorted addresses (or CNAME targets) of the answer
// section's records of that name, and the whole reply.
func (c *labCluster) answer(id, name string, qtype uint16, ecs netip.Prefix) ([]string, *dns.Msg, error) {
	cl := &dns.Client{Timeout: time.Second}
	r, _, err := cl.Exchange(labQuery(name, qtype, ecs), c.node(id).DNS.String())
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	slices.Sort(out)
	return out, r, nil
}

// labQuery is a resolver's question to a lab node: name/qtype without RD,
// EDNS with 1232 bytes, and an ECS option for ecs when it is valid.
func labQuery(name string, qtype uint16, ecs netip.Prefix) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	if ecs.IsValid() {
		o := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(ecs.Bits()), Address: ecs.Addr().AsSlice()}
		m.IsEdns0().Option = append(m.IsEdns0().Option, o)
	}
	return m
}

// waitAnswer waits until every node in ids answers name A with exactly want.
func (c *labCluster) waitAnswer(d time.Duration, ids []string, name string, ecs netip.Prefix, want ...string) {
	c.t.Helper()
	slices.Sort(want)
	c.waitFor(d, fmt.Sprintf("%s A = %v on %v", name, want, ids), func() error {
		return c.checkAnswer(ids, name, ecs, want...)
	})
}

// checkAnswer asks each node once: nil when all answer name A with want,
// authoritatively, NOERROR, with the service's 30 s TTL.
func (c *labCluster) checkAnswer(ids []string, name string, ecs netip.Prefix, want ...string) error {
	slices.Sort(want)
	for _, id := range ids {
		got, r, err := c.answer(id, name, dns.TypeA, ecs)
		if err != nil {
			return fmt.Errorf("%s: %v", id, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			return fmt.Errorf("%s: rcode %s AA %v", id, dns.RcodeToString[r.Rcode], r.Authoritative)
		}
		for _, rr := range r.Answer {
			if rr.Header().Ttl != 30 {
				return fmt.Errorf("%s: TTL %d, want 30: %v", id, rr.Header().Ttl, rr)
			}
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s answers %v", id, got)
		}
	}
	return nil
}

// status reads node id's /status.json, in 5 s at most (callers poll it).
func (c *labCluster) status(id string) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return (&api.Client{Servers: []string{"http://" + c.node(id).HTTP.String()}}).Status(ctx)
}

// route returns service/route of a status document.
func route(st *api.Status, service, name string) (api.Route, bool) {
	for _, s := range st.Services {
		if s.Name != service {
			continue
		}
		for _, r := range s.Routes {
			if r.Name == name {
				return r, true
			}
		}
	}
	return api.Route{}, false
}

// waitCondition waits until every node in ids shows service/default active on
// site in condition cond.
func (c *labCluster) waitCondition(d time.Duration, ids []string, service, site, cond string) {
	c.t.Helper()
	c.waitFor(d, fmt.Sprintf("%s on %s, %s, on %v", service, site, cond, ids), func() error {
		for _, id := range ids {
			st, err := c.status(id)
			if err != nil {
				return fmt.Errorf("%s: %v", id, err)
			}
			r, ok := route(st, service, "default")
			if !ok {
				return fmt.Errorf("%s: no route %s/default", id, service)
			}
			if r.Active != site || r.Condition != cond {
				return fmt.Errorf("%s: %s/default on %s, %s", id, service, r.Active, r.Condition)
			}
		}
		return nil
	})
}

// failoverctl runs the operator CLI against the given nodes (all when none
// is given) with the lab's operator token, and returns its exit code and
// output.
func (c *labCluster) failoverctl(servers []string, args ...string) (int, string, string) {
	c.t.Helper()
	if len(servers) == 0 {
		servers = c.ids()
	}
	var urls []string
	for _, id := range servers {
		urls = append(urls, "http://"+c.node(id).HTTP.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.ctl, append([]string{"--server", strings.Join(urls, ",")}, args...)...)
	cmd.Env = append(os.Environ(), "GEODNSD_TOKEN="+c.l.Token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("failoverctl %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func without(ids []string, drop ...string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}
