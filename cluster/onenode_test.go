package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/geodnsd/geodnsd/failover"
)

func oneNodeOptions(dir string) Options {
	o := Options{
		ID:       "solo",
		Members:  []Member{{ID: "solo", Voter: true}},
		StateDir: dir,
		Spec:     testSpec([]string{"solo"}),
	}
	fastOptions(&o)
	return o
}

func startOne(t *testing.T, o Options) *Cluster {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, c) })
	return c
}

func shutdown(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Log(goroutines())
		t.Errorf("shutdown: %v", err)
	}
}

// A one-node cluster runs the same FSM and leader loop: its own
// observations move its answers. Restarted, it recovers its state from
// the state directory.
func TestOneNodeDecidesAndRecoversFromDisk(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	o := oneNodeOptions(dir)
	o.Registry = reg
	c := startOne(t, o)
	leader(t, []*Cluster{c})
	ctx := context.Background()
	if err := c.Observe(ctx, []failover.Event{obs("solo", "dallas", "d1", false), obs("solo", "losangeles", "l1", true)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, []*Cluster{c}, "failover to losangeles", func() bool { return active(c.View()) == "losangeles" })
	res, err := c.Submit(ctx, failover.Command{Op: failover.OpFreeze, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitApplied(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(c.met.isLeader); got != 1 {
		t.Errorf("is_leader = %v", got)
	}
	if got := testutil.ToFloat64(c.met.applied); got < float64(res.Index) {
		t.Errorf("applied_index = %v, want >= %d", got, res.Index)
	}
	if got := testutil.ToFloat64(c.met.freshVoters); got != 1 {
		t.Errorf("fresh_voters = %v, want 1 (the node itself)", got)
	}
	for _, name := range []string{"geodnsd_cluster_is_leader", "geodnsd_cluster_has_quorum", "geodnsd_cluster_applied_index", "geodnsd_cluster_fresh_voters", "geodnsd_cluster_commit_seconds", "geodnsd_cluster_raft_term", "geodnsd_cluster_raft_last_contact_seconds"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n == 0 {
			t.Errorf("metric %s: %d series, %v", name, n, err)
		}
	}
	if probs, err := testutil.GatherAndLint(reg); err != nil || len(probs) > 0 {
		t.Errorf("promlint: %v %v", probs, err)
	}
	_ = promlint.Problem{}
	before := c.View()
	beforeBytes := stateBytes(t, before.State)
	shutdown(t, c)

	c2 := startOne(t, oneNodeOptions(dir))
	waitUntil(t, 5*time.Second, []*Cluster{c2}, "the log replayed", func() bool { return c2.View().Index >= before.Index })
	v := c2.View()
	if active(v) != "losangeles" || !v.State.Frozen() {
		t.Fatalf("after restart: active %s, frozen %v", active(v), v.State.Frozen())
	}
	// The state at the same index is the same, byte for byte.
	if v.Index == before.Index && string(stateBytes(t, v.State)) != string(beforeBytes) {
		t.Fatal("state recovered at the same index differs")
	}
	if h := v.State.Status().History; len(h) != len(before.State.Status().History) && v.Index == before.Index {
		t.Fatalf("history %d entries, want %d", len(h), len(before.State.Status().History))
	}
}

// A snapshot written to disk is what a restart restores from.
func TestOneNodeRestoresFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	c := startOne(t, oneNodeOptions(dir))
	leader(t, []*Cluster{c})
	ctx := context.Background()
	if _, err := c.Submit(ctx, failover.Command{Op: failover.OpMode, Service: "cas", Mode: failover.Manual, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := c.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot file under the state dir")
	}
	shutdown(t, c)
	o := oneNodeOptions(dir)
	c2 := startOne(t, o)
	st := c2.View().State.Status() // restored before raft starts: no wait
	if c2.View().Index == 0 || st.Services[0].Policy.Failover != failover.Manual {
		t.Fatalf("restored from snapshot: index %d, cas failover mode %s", c2.View().Index, st.Services[0].Policy.Failover)
	}
}

// A state directory made for another node or cluster is refused with an
// error that says so; so is raft data without an identity.
func TestWrongStateDirRefused(t *testing.T) {
	dir := t.TempDir()
	c := startOne(t, oneNodeOptions(dir))
	leader(t, []*Cluster{c})
	shutdown(t, c)

	other := oneNodeOptions(dir)
	other.ID, other.Members = "ns2", []Member{{ID: "ns2", Voter: true}}
	other.Spec = testSpec([]string{"ns2"})
	if _, err := New(other); err == nil || !strings.Contains(err.Error(), `made for node "solo", not "ns2"`) {
		t.Fatalf("another node's dir: %v", err)
	}

	named := oneNodeOptions(dir)
	named.ClusterID = "prod"
	if _, err := New(named); err == nil || !strings.Contains(err.Error(), "made for cluster") {
		t.Fatalf("a cluster id that differs: %v", err)
	}

	if err := os.Remove(filepath.Join(dir, identityFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := New(oneNodeOptions(dir)); err == nil || !strings.Contains(err.Error(), "no identity.json") {
		t.Fatalf("raft data without identity: %v", err)
	}
}

// The identity check alone: a cluster whose members changed one at a
// time keeps its directory; another cluster's directory is refused.
func TestIdentityMembers(t *testing.T) {
	dir := t.TempDir()
	ms := func(ids ...string) []Member {
		var out []Member
		for _, id := range ids {
			out = append(out, Member{ID: id, Voter: true})
		}
		return out
	}
	if err := writeIdentity(dir, "ns1", derivedClusterID(ms("ns1", "ns2", "ns3")), ms("ns1", "ns2", "ns3")); err != nil {
		t.Fatal(err)
	}
	if _, err := checkIdentity(dir, "ns1", "", ms("ns1", "ns2", "ns3", "ns4"), true); err != nil {
		t.Errorf("one member added: %v", err)
	}
	if _, err := checkIdentity(dir, "ns1", "", ms("ns1", "ns2", "ns4"), true); err != nil {
		t.Errorf("one member replaced: %v", err)
	}
	if _, err := checkIdentity(dir, "ns1", "", ms("ns1", "a", "b"), true); err == nil {
		t.Error("another cluster's members accepted")
	}
	if _, err := checkIdentity(dir, "ns2", "", ms("ns1", "ns2", "ns3"), true); err == nil {
		t.Error("another node accepted")
	}
}

// An entry this build cannot apply halts every node's FSM: the view says
// so, writes fail with ErrHalted, WaitApplied does not hang, the leader
// stops stamping.
func TestHaltedClusterRefusesWrites(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recorder{min: 8}
	o := oneNodeOptions(t.TempDir())
	o.Registry = reg
	o.Logger = slogNew(rec)
	c := startOne(t, o)
	leader(t, []*Cluster{c})
	if err := c.raft.Apply([]byte{entryEvents, 3, 0x7f, '{', '}'}, time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, []*Cluster{c}, "halted view", func() bool { return c.View().Halted != "" })
	v := c.View()
	if !strings.Contains(v.Halted, "unknown kind 0x7f") {
		t.Errorf("Halted = %q", v.Halted)
	}
	if _, err := c.Submit(context.Background(), failover.Command{Op: failover.OpFreeze}); !errors.Is(err, ErrHalted) {
		t.Errorf("submit on a halted node: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitApplied(ctx, v.Index+10); !errors.Is(err, ErrHalted) {
		t.Errorf("WaitApplied past the halt: %v", err)
	}
	if got := testutil.ToFloat64(c.met.halted); got != 1 {
		t.Errorf("halted metric %v", got)
	}
	if rec.find("state machine halted") == "" {
		t.Error("no error log for the halt")
	}
	if _, err := c.raft.Snapshot().Error(), error(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.raft.Snapshot().Error(); err == nil {
		t.Error("raft took a snapshot of a halted FSM")
	}
	_ = raft.Leader
}
