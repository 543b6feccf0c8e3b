package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/geodnsd/geodnsd/failover"
)

// Three nodes over mutual TLS: every node's observations reach the leader
// (forwarded by followers), the leader decides, every node applies the same
// decision; a follower's command and its refusal travel back unchanged;
// losing the leader elects another that goes on.
func TestThreeNodesDecideForwardAndReelect(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 3, nil)
	// Replication goes one RPC at a time: raft's pipeline can deadlock (startTransport).
	for _, c := range tc.nodes {
		if _, err := c.trans.AppendEntriesPipeline("ns2", "127.0.0.1:1"); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
			t.Fatalf("%s: AppendEntriesPipeline: %v, want raft.ErrPipelineReplicationNotSupported", c.ID(), err)
		}
	}
	l := leader(t, tc.nodes)
	ctx := context.Background()

	// Each node, leader or follower, reports dallas down and losangeles up.
	for _, c := range tc.nodes {
		err := c.Observe(ctx, []failover.Event{
			obs(c.ID(), "dallas", "d1", false),
			obs(c.ID(), "losangeles", "l1", true),
		})
		if err != nil {
			t.Fatalf("%s observe: %v", c.ID(), err)
		}
	}
	waitUntil(t, 10*time.Second, tc.nodes, "every node serving cas from losangeles", func() bool {
		for _, c := range tc.nodes {
			if active(c.View()) != "losangeles" {
				return false
			}
		}
		return true
	})
	for _, c := range tc.nodes {
		st := c.View().State.Status()
		h := st.History[len(st.History)-1]
		if h.Kind != failover.KindDecisionEntry || h.From != "dallas" || h.To != "losangeles" || h.Epoch != 1 {
			t.Errorf("%s: last history entry %+v, want a decision dallas -> losangeles at epoch 1", c.ID(), h)
		}
	}

	// A follower's command is forwarded; a refusal comes back as the
	// guard's *CommandError.
	var f *Cluster
	for _, c := range tc.nodes {
		if c != l {
			f = c
			break
		}
	}
	_, err := f.Submit(ctx, failover.Command{Op: failover.OpPromote, Site: "dallas", Actor: "test"})
	var ce *failover.CommandError
	if !errors.Is(err, failover.ErrRefused) || !errors.As(err, &ce) || !ce.Refused || ce.Command != "promote dallas" {
		t.Fatalf("promote of a down site from a follower: err = %#v, want the guard's refusal", err)
	}
	_, err = f.Submit(ctx, failover.Command{Op: failover.OpPromote, Site: "nowhere"})
	if !errors.Is(err, failover.ErrInvalid) || !errors.As(err, &ce) || ce.Refused {
		t.Fatalf("promote of an unknown site: err = %v, want invalid", err)
	}
	res, err := f.Submit(ctx, failover.Command{Op: failover.OpFreeze, Actor: "test"})
	if err != nil {
		t.Fatalf("freeze from a follower: %v", err)
	}
	all, err := f.WaitAll(ctx, res.Index)
	if err != nil || len(all) != 3 {
		t.Fatalf("WaitAll: %v, %v", all, err)
	}
	for id, idx := range all {
		if idx < res.Index {
			t.Errorf("WaitAll: %s at %d < %d", id, idx, res.Index)
		}
	}
	for _, c := range tc.nodes {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := c.WaitApplied(wctx, res.Index); err != nil {
			t.Fatalf("%s: %v", c.ID(), err)
		}
		cancel()
		if !c.View().State.Frozen() {
			t.Errorf("%s: not frozen after applying index %d", c.ID(), res.Index)
		}
	}
	res, err = f.Submit(ctx, failover.Command{Op: failover.OpFailover, Service: "cas", Site: "dallas", Force: true, Reason: "test", Actor: "test"})
	if err != nil || res.Epoch != 2 {
		t.Fatalf("forced failover from a follower: %+v, %v; want epoch 2", res, err)
	}

	// Leader loss: the two others elect a new leader that accepts writes.
	old := l.ID()
	for i, c := range tc.nodes {
		if c == l {
			tc.kill(i)
		}
	}
	nl := leader(t, tc.live())
	if nl.ID() == old {
		t.Fatalf("leader %s still leads after shutdown", old)
	}
	res, err = tc.live()[0].Submit(ctx, failover.Command{Op: failover.OpThaw, Actor: "test"})
	if err != nil {
		t.Fatalf("thaw after re-election: %v", err)
	}
	// The dead member is unreachable: WaitAll waits for the two others.
	if all, err := tc.live()[0].WaitAll(ctx, res.Index); err != nil || len(all) != 2 {
		t.Fatalf("WaitAll with a member down: %v, %v", all, err)
	}
	for _, c := range tc.live() {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := c.WaitApplied(wctx, res.Index); err != nil {
			t.Fatal(err)
		}
		cancel()
		if c.View().State.Frozen() {
			t.Errorf("%s still frozen", c.ID())
		}
	}
}

// A config change goes through the log: every node switches at the same
// index; the same spec again appends nothing; a bad spec is refused with
// ErrInvalid, also when forwarded.
func TestRespecThroughTheLog(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 2, nil)
	l := leader(t, tc.nodes)
	f := others(tc.nodes, l)[0]
	ctx := context.Background()
	sp := testSpec(ids(2))
	sp.Services[0].Routes = append(sp.Services[0].Routes, failover.RouteSpec{Name: "us", Sites: []string{"losangeles", "dallas"}})
	if err := f.Respec(ctx, sp); err != nil {
		t.Fatal(err)
	}
	configs := func(c *Cluster) int { // spec entries in c's log
		first, _ := c.logs.FirstIndex()
		last, _ := c.logs.LastIndex()
		n := 0
		for i := first; i <= last; i++ {
			var e raft.Log
			if c.logs.GetLog(i, &e) == nil && e.Type == raft.LogCommand && len(e.Data) > 0 && e.Data[0] == entrySpec {
				n++
			}
		}
		return n
	}
	waitUntil(t, 10*time.Second, tc.nodes, "both nodes on the new spec", func() bool {
		for _, c := range tc.nodes {
			if _, ok := c.View().State.Answer("cas", "us"); !ok {
				return false
			}
		}
		return true
	})
	before := configs(l)
	if before < 1 { // the change (and the bootstrap spec, unless the change came first)
		t.Fatalf("%d spec entries in the log, want at least 1", before)
	}
	if err := f.Respec(ctx, sp); err != nil {
		t.Fatal(err)
	}
	res, err := f.Submit(ctx, failover.Command{Op: failover.OpFreeze, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	waitAllApplied(t, tc.nodes, res.Index)
	if after := configs(l); after != before {
		t.Errorf("the same spec again added %d config entries", after-before)
	}
	bad := sp
	bad.VoteTTL = 0
	for _, c := range tc.nodes {
		if err := c.Respec(ctx, bad); !errors.Is(err, failover.ErrInvalid) {
			t.Errorf("%s: bad spec: %v, want ErrInvalid", c.ID(), err)
		}
	}
}
