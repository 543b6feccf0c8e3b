package cluster

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/geodnsd/geodnsd/failover"
)

func raftServers(t *testing.T, c *Cluster) map[string]raft.ServerSuffrage {
	t.Helper()
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	out := map[string]raft.ServerSuffrage{}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage
	}
	return out
}

// Membership follows the configuration: a member added in config (and
// started with Join) is added by the leader and receives the state; a
// member removed from config is removed; a non-voter stays one.
func TestMembershipFollowsConfig(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 3, nil)
	l := leader(t, tc.nodes)
	ctx := context.Background()
	res, err := l.Submit(ctx, failover.Command{Op: failover.OpFreeze, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}

	// A fourth member, as a non-voter first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(tc.tls["ns1"].CA, tc.tls["ns1"].CA[:len(tc.tls["ns1"].CA)-len(".pem")]+"-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	m4 := Member{ID: "ns4", Raft: netip.MustParseAddrPort(ln.Addr().String()), Voter: false}
	f4 := writeNodeCert(t, ca, m4, tc.tls["ns1"].CA)
	members := append(slices.Clone(tc.members), m4)
	o := tc.opts[0]
	o.ID, o.Members, o.Listener, o.TLS, o.Join = "ns4", members, ln, &f4, true
	o.StateDir = t.TempDir()
	o.Registry = nil
	c4, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, c4) })
	for _, c := range tc.nodes {
		if err := c.SetMembers(members); err != nil {
			t.Fatal(err)
		}
	}
	waitAllApplied(t, []*Cluster{c4}, res.Index)
	if !c4.View().State.Frozen() {
		t.Fatal("the joined node's state is not the cluster's")
	}
	if s := raftServers(t, l); s["ns4"] != raft.Nonvoter {
		t.Fatalf("raft configuration %v: ns4 should be a non-voter", s)
	}

	// Promote it to voter, and remove a follower.
	members[3].Voter = true
	var gone int
	for i, c := range tc.nodes {
		if c != l {
			gone = i
			break
		}
	}
	kept := slices.DeleteFunc(slices.Clone(members), func(m Member) bool { return m.ID == tc.members[gone].ID })
	for _, c := range append(slices.Clone(tc.nodes), c4) {
		if c.ID() == tc.members[gone].ID {
			continue
		}
		if err := c.SetMembers(kept); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 15*time.Second, tc.nodes, "ns4 a voter and "+tc.members[gone].ID+" removed", func() bool {
		s := raftServers(t, l)
		_, there := s[tc.members[gone].ID]
		return s["ns4"] == raft.Voter && !there && len(s) == 3
	})
	res, err = c4.Submit(ctx, failover.Command{Op: failover.OpThaw, Actor: "test"})
	if err != nil {
		t.Fatalf("write through the new member: %v", err)
	}
	waitAllApplied(t, []*Cluster{l, c4}, res.Index)
}

func writeNodeCert(t *testing.T, ca *CA, m Member, caFile string) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	cp, kp, err := ca.Issue(m.ID, m.Raft.Addr(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: caFile, Cert: fmt.Sprintf("%s/%s.pem", dir, m.ID), Key: fmt.Sprintf("%s/%s-key.pem", dir, m.ID)}
	if err := writeNew(f.Cert, cp, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(f.Key, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// A follower that fell behind the leader's compacted log is brought up to
// date with a snapshot over the TLS transport, and ends with the same bytes.
func TestLaggingFollowerInstallsSnapshot(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, 3, func(i int, o *Options) {
		o.SnapshotThreshold = 8
		o.TrailingLogs = 4
	})
	l := leader(t, tc.nodes)
	f := others(tc.nodes, l)[0]
	tc.partition(indexOf(tc, f))
	ctx := context.Background()
	var last uint64
	for i := range 12 {
		site, ep := "dallas", "d1"
		if i%2 == 1 {
			site, ep = "losangeles", "l1"
		}
		res, err := l.Submit(ctx, failover.Command{Op: failover.OpMode, Service: "cas", Mode: []failover.Mode{failover.Auto, failover.Manual}[i%2], Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Observe(ctx, []failover.Event{obs(l.ID(), site, ep, i%3 == 0)}); err != nil {
			t.Fatal(err)
		}
		last = res.Index
	}
	// Compact both connected nodes' logs: leadership may have moved
	// between them under load.
	for _, c := range others(tc.nodes, f) {
		if err := c.raft.Snapshot().Error(); err != nil {
			t.Fatalf("%s: snapshot: %v", c.ID(), err)
		}
	}
	tc.heal(indexOf(tc, f))
	waitAllApplied(t, []*Cluster{f}, last)
	// raft records the installed snapshot just after the FSM restored it
	// (and published); the views keep changing with the leader's ticks.
	waitUntil(t, 10*time.Second, tc.nodes, "the follower to record an installed snapshot", func() bool {
		return f.raft.Stats()["last_snapshot_index"] != "0"
	})
	// Compare when all three have applied the same index.
	var a, b *View
	waitUntil(t, 10*time.Second, tc.nodes, "the same index everywhere", func() bool {
		a, b = l.View(), f.View()
		return a.Index == b.Index
	})
	if string(stateBytes(t, a.State)) != string(stateBytes(t, b.State)) {
		t.Fatal("the follower restored from a snapshot differs from the leader")
	}
}
