package cluster

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/geodnsd/geodnsd/failover"
)

func waitAllApplied(t *testing.T, nodes []*Cluster, index uint64) {
	t.Helper()
	for _, c := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := c.WaitApplied(ctx, index)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.ID(), err)
		}
	}
}

func others(nodes []*Cluster, not *Cluster) []*Cluster {
	var out []*Cluster
	for _, c := range nodes {
		if c != not {
			out = append(out, c)
		}
	}
	return out
}

func indexOf(tc *testCluster, c *Cluster) int {
	for i, n := range tc.nodes {
		if n == c {
			return i
		}
	}
	return -1
}

// A follower cut off from the others loses its quorum: it keeps serving
// its last committed state, says so, refuses writes with ErrNoQuorum
// within the bound, and decides nothing; the majority goes on and fails
// over; healed, the follower catches up.
func TestPartitionedMinorityKeepsLastStateAndRefusesWrites(t *testing.T) {
	t.Parallel()
	const writeTimeout = 800 * time.Millisecond
	tc := startCluster(t, 3, func(i int, o *Options) { o.WriteTimeout = writeTimeout })
	l := leader(t, tc.nodes)
	f := others(tc.nodes, l)[0]
	ctx := context.Background()
	// The first forwarded write sets up TLS connections and may exceed the
	// short bound under -race: retry it (a deadline bounds the retries).
	var res Applied
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; {
		res, err = f.Submit(ctx, failover.Command{Op: failover.OpMode, Service: "cas", Failback: failover.Auto, Actor: "test"})
		if err == nil || !errors.Is(err, ErrNoQuorum) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	waitAllApplied(t, tc.nodes, res.Index)

	tc.partition(indexOf(tc, f))
	waitUntil(t, 10*time.Second, []*Cluster{f}, "the cut-off follower to lose its quorum", func() bool { return !f.View().HasQuorum })
	before := f.View()
	beforeBytes := stateBytes(t, before.State)

	start := time.Now()
	_, err = f.Submit(ctx, failover.Command{Op: failover.OpFreeze, Actor: "test"})
	took := time.Since(start)
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("write on the minority: %v, want ErrNoQuorum", err)
	}
	if took > writeTimeout+5*time.Second {
		t.Fatalf("write on the minority took %s with a %s bound", took, writeTimeout)
	}
	if err := f.Observe(ctx, []failover.Event{obs(f.ID(), "dallas", "d1", false)}); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("observe on the minority: %v, want ErrNoQuorum", err)
	}

	// The majority decides: dallas down by 2 of 3, losangeles up.
	major := others(tc.nodes, f)
	for _, c := range major {
		if err := c.Observe(ctx, []failover.Event{obs(c.ID(), "dallas", "d1", false), obs(c.ID(), "losangeles", "l1", true)}); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 10*time.Second, major, "the majority failing over", func() bool {
		return active(major[0].View()) == "losangeles" && active(major[1].View()) == "losangeles"
	})
	v := f.View()
	if v.Index != before.Index || !bytes.Equal(stateBytes(t, v.State), beforeBytes) || active(v) != "dallas" {
		t.Fatalf("the minority's state moved: index %d -> %d, active %s", before.Index, v.Index, active(v))
	}
	if v.HasQuorum || v.IsLeader {
		t.Fatalf("the minority claims quorum %v or leadership %v", v.HasQuorum, v.IsLeader)
	}
	if got := testutil.ToFloat64(f.met.hasQuorum); got != 0 {
		t.Errorf("has_quorum metric on the minority = %v", got)
	}

	tc.heal(indexOf(tc, f))
	waitUntil(t, 15*time.Second, []*Cluster{f}, "the healed follower to catch up", func() bool {
		v := f.View()
		return v.HasQuorum && active(v) == "losangeles"
	})
}

// A leader cut off from the others is deposed: what it proposed alone is
// never applied; the new leader's command wins; a decision computed from
// the old epoch, appended later, is ignored everywhere.
func TestDeposedLeaderStaleDecisionIgnored(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 3, nil)
	old := leader(t, tc.nodes)
	ctx := context.Background()
	stale := failover.Decision{Time: time.Now().UTC(), Service: "cas", Epoch: 0, Moves: []failover.Move{{Route: "default", From: "dallas", To: "losangeles", Kind: failover.MoveFailover, Reason: "stale"}}}
	data, err := encodeEvents([]failover.Event{stale})
	if err != nil {
		t.Fatal(err)
	}

	tc.partition(indexOf(tc, old))
	fut := old.raft.Apply(data, time.Second) // the deposed leader's proposal
	rest := others(tc.nodes, old)
	nl := leader(t, rest)
	res, err := nl.Submit(ctx, failover.Command{Op: failover.OpFailover, Service: "cas", Site: "losangeles", Force: true, Reason: "planned", Actor: "test"})
	if err != nil || res.Epoch != 1 {
		t.Fatalf("command on the new leader: %+v %v", res, err)
	}
	if err := fut.Error(); err == nil {
		t.Fatal("the deposed leader's proposal committed")
	}
	tc.heal(indexOf(tc, old))
	waitAllApplied(t, tc.nodes, res.Index)

	// The stale decision appended now: applied, ignored.
	// Through whichever node leads now (leadership may move at the heal).
	var r2 uint64
	for deadline := time.Now().Add(15 * time.Second); ; {
		r2, err = leader(t, tc.nodes).propose2(ctx, data)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	waitAllApplied(t, tc.nodes, r2)
	for _, c := range tc.nodes {
		st := c.View().State.Status()
		if st.Services[0].Epoch != 1 || st.Services[0].Routes[0].Active != "losangeles" {
			t.Errorf("%s: epoch %d active %s", c.ID(), st.Services[0].Epoch, st.Services[0].Routes[0].Active)
		}
		for _, h := range st.History {
			if h.Kind == failover.KindDecisionEntry {
				t.Errorf("%s: a stale decision was applied: %+v", c.ID(), h)
			}
		}
	}
	// Every node holds the same bytes at the same index.
	want := stateBytes(t, tc.nodes[0].View().State)
	for _, c := range tc.nodes[1:] {
		if c.View().Index == tc.nodes[0].View().Index && !bytes.Equal(stateBytes(t, c.View().State), want) {
			t.Errorf("%s differs from %s at index %d", c.ID(), tc.nodes[0].ID(), c.View().Index)
		}
	}
}

// propose2 proposes raw data on this leader and returns its index.
func (c *Cluster) propose2(ctx context.Context, data []byte) (uint64, error) {
	_, idx, err := c.propose(ctx, data)
	return idx, err
}

// A leader whose clock is ahead of the others' by more than MaxClockSkew
// stops stamping, hands leadership over and says why at Error; the others
// do not step down.
func TestClockSkewLeaderStepsDown(t *testing.T) {
	t.Parallel()
	rec := &recorder{min: 8} // slog.LevelError
	regs := make([]*prometheus.Registry, 3)
	tc := startCluster(t, 3, func(i int, o *Options) {
		regs[i] = prometheus.NewRegistry()
		o.Registry = regs[i]
		o.BeatInterval = 100 * time.Millisecond
		if i == 0 {
			o.Now = func() time.Time { return time.Now().Add(10 * time.Second) }
			o.Logger = slogNew(rec)
		}
	})
	skewed := tc.nodes[0]
	leader(t, tc.nodes)
	// Hand leadership to the skewed node (again, if a transfer is lost
	// under load) until it steps down by itself.
	var asked time.Time
	waitUntil(t, 30*time.Second, tc.nodes, "the skewed node to step down", func() bool {
		if testutil.ToFloat64(skewed.met.stepDowns.WithLabelValues("clock_skew")) >= 1 {
			return true
		}
		for _, c := range tc.nodes[1:] {
			if c.View().IsLeader && time.Since(asked) > time.Second {
				asked = time.Now()
				m := tc.members[0]
				c.raft.LeadershipTransferToServer(raft.ServerID(m.ID), raft.ServerAddress(m.Raft.String()))
			}
		}
		return false
	})
	waitUntil(t, 15*time.Second, tc.nodes, "another leader", func() bool {
		for _, c := range tc.nodes {
			if v := c.View(); v.Leader == "" || v.Leader == skewed.ID() || v.Leader != tc.nodes[1].View().Leader || !v.HasQuorum {
				return false
			}
		}
		return true
	})
	msg := rec.find("stepping down")
	if msg == "" || !strings.Contains(msg, "clock_skew") || !strings.Contains(msg, "s ahead of the median") || !strings.Contains(msg, "is 10.") && !strings.Contains(msg, "is 9.") {
		t.Fatalf("error log: %q", msg)
	}
	// Writes through the skewed node still work (it forwards).
	if _, err := skewed.Submit(context.Background(), failover.Command{Op: failover.OpFreeze, Actor: "test"}); err != nil {
		t.Fatalf("write via the skewed follower: %v", err)
	}
	for _, c := range tc.nodes[1:] {
		if n := testutil.ToFloat64(c.met.stepDowns.WithLabelValues("clock_skew")); n != 0 {
			t.Errorf("%s stepped down %v times", c.ID(), n)
		}
	}
}

// The median ignores a single outlier and takes the value nearer zero
// between two middles.
func TestSkewMedian(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name string
		offs []time.Duration
		want time.Duration
	}{
		{"one", []time.Duration{-5 * time.Second}, -5 * time.Second},
		{"two split", []time.Duration{-5 * time.Second, 0}, 0},
		{"two agree", []time.Duration{-5 * time.Second, -4 * time.Second}, -4 * time.Second},
		{"five, two outliers", []time.Duration{9 * time.Second, 8 * time.Second, 0, time.Millisecond, -time.Millisecond}, time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := skewTracker{beats: map[string]beatClock{}}
			for i, o := range tt.offs {
				s.record(string(rune('a'+i)), o, now)
			}
			s.record("stale", 30*time.Second, now.Add(-time.Hour))
			got, n := s.median(time.Minute, now)
			if got != tt.want || n != len(tt.offs) {
				t.Fatalf("median %s of %d, want %s of %d", got, n, tt.want, len(tt.offs))
			}
		})
	}
}
