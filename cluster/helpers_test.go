package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// testSpec: service cas on route default = [dallas, losangeles], no
// hold-downs, the given voters.
func testSpec(nodes []string) failover.Spec {
	return failover.Spec{
		Sites: []failover.SiteSpec{
			{Name: "dallas", Endpoints: []failover.Endpoint{{Name: "d1", Address: "192.0.2.10"}}},
			{Name: "losangeles", Endpoints: []failover.Endpoint{{Name: "l1", Address: "198.51.100.10"}}},
		},
		Services: []failover.ServiceSpec{{
			Name:   "cas",
			Names:  []string{"cas.example.com."},
			Routes: []failover.RouteSpec{{Name: "default", Sites: []string{"dallas", "losangeles"}}},
		}},
		Nodes:                  nodes,
		VoteTTL:                time.Hour,
		TrustHealthWithoutSync: true,
	}
}

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ns%d", i+1)
	}
	return out
}

// fastOptions are short raft timings for in-process tests.
func fastOptions(o *Options) {
	o.HeartbeatTimeout = 150 * time.Millisecond
	o.ElectionTimeout = 150 * time.Millisecond
	o.LeaderLeaseTimeout = 150 * time.Millisecond
	o.CommitTimeout = 5 * time.Millisecond
	o.TickInterval = 50 * time.Millisecond
	o.BeatInterval = 50 * time.Millisecond
	o.WriteTimeout = 3 * time.Second
}

// testCluster is n nodes over mutual TLS on 127.0.0.1.
type testCluster struct {
	t       testing.TB
	nodes   []*Cluster
	opts    []Options
	members []Member
	tls     map[string]TLSFiles
}

// startCluster binds n listeners on 127.0.0.1:0, writes a PKI for them and
// starts n nodes; tweak may change each node's options. Nodes are shut down
// at cleanup.
func startCluster(t testing.TB, n int, tweak func(i int, o *Options)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t}
	lns := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		ap := netip.MustParseAddrPort(ln.Addr().String())
		tc.members = append(tc.members, Member{ID: fmt.Sprintf("ns%d", i+1), Raft: ap, Voter: true})
	}
	files, err := WritePKI(t.TempDir(), tc.members, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tc.tls = files
	dir := t.TempDir()
	for i, m := range tc.members {
		f := files[m.ID]
		o := Options{
			ID: m.ID, Members: tc.members, Listener: lns[i], TLS: &f,
			StateDir: fmt.Sprintf("%s/%s", dir, m.ID),
			Spec:     testSpec(ids(max(n, 2))),
		}
		fastOptions(&o)
		if tweak != nil {
			tweak(i, &o)
		}
		tc.opts = append(tc.opts, o)
	}
	for i := range n {
		c, err := New(tc.opts[i])
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		tc.nodes = append(tc.nodes, c)
	}
	t.Cleanup(tc.stop)
	return tc
}

func (tc *testCluster) stop() {
	var wg sync.WaitGroup
	for _, c := range tc.nodes {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Shutdown(ctx); err != nil {
				tc.t.Log(goroutines())
				tc.t.Errorf("shutdown %s: %v", c.ID(), err)
			}
		}()
	}
	wg.Wait()
}

// kill shuts node i down.
func (tc *testCluster) kill(i int) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.nodes[i].Shutdown(ctx); err != nil {
		tc.t.Fatalf("shutdown %s: %v", tc.nodes[i].ID(), err)
	}
	tc.nodes[i] = nil
}

// live returns the running nodes.
func (tc *testCluster) live() []*Cluster {
	var out []*Cluster
	for _, c := range tc.nodes {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// partition cuts the nodes at indexes a off from the others (both ways).
func (tc *testCluster) partition(a ...int) {
	tc.setPartition(a, true)
}

// heal undoes partition(a...).
func (tc *testCluster) heal(a ...int) { tc.setPartition(a, false) }

func (tc *testCluster) setPartition(a []int, block bool) {
	in := map[int]bool{}
	for _, i := range a {
		in[i] = true
	}
	var inIDs, outIDs []string
	for i, m := range tc.members {
		if in[i] {
			inIDs = append(inIDs, m.ID)
		} else {
			outIDs = append(outIDs, m.ID)
		}
	}
	for i, c := range tc.nodes {
		if c == nil {
			continue
		}
		if in[i] {
			c.mux.setBlocked(outIDs, block)
		} else {
			c.mux.setBlocked(inIDs, block)
		}
	}
}

// waitUntil waits until cond holds, re-checking whenever a node publishes a
// view; it fails the test after timeout.
func waitUntil(t testing.TB, timeout time.Duration, nodes []*Cluster, what string, cond func() bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)}}
		for _, c := range nodes {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Changed())})
		}
		if cond() {
			return
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			if cond() {
				return
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// leader waits until exactly one of nodes leads and every one of them
// names it, and returns it.
func leader(t testing.TB, nodes []*Cluster) *Cluster {
	t.Helper()
	var l *Cluster
	waitUntil(t, 15*time.Second, nodes, "one agreed leader", func() bool {
		l = nil
		for _, c := range nodes {
			if c.View().IsLeader {
				if l != nil {
					return false
				}
				l = c
			}
		}
		if l == nil {
			return false
		}
		for _, c := range nodes {
			if v := c.View(); v.Leader != l.ID() || !v.HasQuorum {
				return false
			}
		}
		return true
	})
	return l
}

// obs is node's verdict on an endpoint.
func obs(node, site, ep string, up bool) failover.Observation {
	return failover.Observation{Node: node, Site: site, Endpoint: ep, Check: "http", Up: up, Reason: "test"}
}

// active returns the active site of cas/default in v.
func active(v *View) string {
	a, _ := v.State.Answer("cas", "default")
	return a.Site
}

// recorder is a slog handler that keeps records at or above a level.
type recorder struct {
	mu   sync.Mutex
	min  slog.Level
	msgs []string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.min }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.msgs = append(r.msgs, b.String())
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(sub string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if strings.Contains(m, sub) {
			return m
		}
	}
	return ""
}

func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }

// goroutines is a dump of every goroutine, for a shutdown that hangs.
func goroutines() string {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return b.String()
}
