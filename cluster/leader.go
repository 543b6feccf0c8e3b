package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/geodnsd/geodnsd/failover"
)

// leaderLoop runs while this node leads: every TickInterval, and right
// after observations arrive, it applies a Tick stamped with its clock and
// appends what failover.Decide proposes at that time. It also appends the
// bootstrap spec and brings raft's membership to the configured one.
func (c *Cluster) leaderLoop(ctx context.Context) {
	c.log.Info("cluster leadership", "from", "follower", "to", "leader", "reason", "raft election", "term", c.raft.CurrentTerm())
	// Apply everything committed before this term first, so that the
	// leader stamps and decides on the latest state.
	if err := wait(ctx, c.raft.Barrier(c.o.WriteTimeout)); err != nil {
		c.log.Warn("leader barrier", "err", err)
	}
	t := time.NewTicker(c.o.TickInterval)
	defer t.Stop()
	for {
		c.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		case <-c.membersSet:
		}
	}
}

// round is one leader step.
func (c *Cluster) round(ctx context.Context) {
	if v := c.View(); v.Halted != "" {
		c.handOver(ctx, "halted", fmt.Sprintf("state machine halted: %s", v.Halted))
		return
	}
	if c.skewed(ctx) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.WriteTimeout)
	defer cancel()
	if err := c.ensureSpec(ctx); err != nil {
		c.log.Debug("bootstrap spec not appended", "err", err)
		return
	}
	c.reconcile(ctx)
	now := c.o.Now().UTC()
	data, err := encodeEvents([]failover.Event{failover.Tick{Time: now}})
	if err != nil {
		c.log.Error("encode tick", "err", err)
		return
	}
	if _, _, err := c.propose(ctx, data); err != nil {
		c.log.Debug("tick not committed", "err", err)
		return
	}
	st := c.View().State
	ds := failover.Decide(st, now)
	if len(ds) == 0 {
		return
	}
	evs := make([]failover.Event, len(ds))
	for i, d := range ds {
		evs[i] = d
		for _, m := range d.Moves {
			c.log.Info("decision proposed", "service", d.Service, "route", m.Route, "from", m.From, "to", m.To, "reason", m.Reason, "epoch", d.Epoch)
		}
	}
	c.met.decisions.Add(float64(len(ds)))
	if data, err = encodeEvents(evs); err != nil {
		c.log.Error("encode decisions", "err", err)
		return
	}
	result := "committed"
	if _, _, err := c.propose(ctx, data); err != nil {
		c.log.Warn("decisions not committed", "err", err)
		result = "not_committed"
	}
	for _, d := range ds {
		for _, m := range d.Moves {
			c.met.moves.WithLabelValues(string(m.Kind), result).Inc()
		}
	}
}

// ensureSpec appends the bootstrap spec (Options.Spec, marked initial)
// when this leader's state has none yet; the FSM ignores it if another
// leader's got in first.
func (c *Cluster) ensureSpec(ctx context.Context) error {
	if c.View().State != c.placehold {
		return nil
	}
	c.specMu.Lock() // one proposal; concurrent writers wait for it
	defer c.specMu.Unlock()
	if c.View().State != c.placehold {
		return nil
	}
	data, err := encodeSpec(specEntry{Time: c.o.Now().UTC(), Spec: c.o.Spec, Initial: true})
	if err != nil {
		return err
	}
	_, _, err = c.propose(ctx, data)
	return err
}

// beatClock is one node's clock offset as the leader last saw it.
type beatClock struct {
	offset time.Duration // the node's clock minus the leader's stamp
	at     time.Time     // when the leader saw it (its monotonic clock)
}

// skewTracker keeps, on the leader, the clock offsets of the other nodes'
// beats.
type skewTracker struct {
	mu    sync.Mutex
	beats map[string]beatClock
}

func (s *skewTracker) record(node string, off time.Duration, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beats[node] = beatClock{offset: off, at: at}
}

func (s *skewTracker) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.beats)
}

// median returns the median offset of the beats seen within fresh of now,
// and how many there were. With an even count it takes, of the two middle
// offsets, the one nearer zero: the leader is judged wrong only when more
// than half of the others agree.
func (s *skewTracker) median(fresh time.Duration, now time.Time) (time.Duration, int) {
	s.mu.Lock()
	var offs []time.Duration
	for _, b := range s.beats {
		if now.Sub(b.at) < fresh {
			offs = append(offs, b.offset)
		}
	}
	s.mu.Unlock()
	if len(offs) == 0 {
		return 0, 0
	}
	slices.Sort(offs)
	n := len(offs)
	if n%2 == 1 {
		return offs[n/2], n
	}
	a, b := offs[n/2-1], offs[n/2]
	if absDur(a) < absDur(b) {
		return a, n
	}
	return b, n
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// skewed is the clock guard: the leader compares its clock with the
// median clock of the fresh nodes — itself (offset 0) and every node whose
// beat it stamped within three beat intervals, each corrected by half its
// forwarding round trip. When those nodes are a majority of the voters and
// the median differs from its clock by more than MaxClockSkew, it stops
// stamping and hands leadership over. So one skewed follower cannot depose
// a good leader, and a skewed leader is outvoted by the others. It reports
// whether the leader must not stamp.
func (c *Cluster) skewed(ctx context.Context) bool {
	voters := 0
	for _, m := range c.ros.get() {
		if m.Voter {
			voters++
		}
	}
	c.skew.record(c.o.ID, 0, time.Now())
	med, n := c.skew.median(3*c.o.BeatInterval, time.Now())
	if n > 1 {
		c.met.clockOffset.Set(med.Seconds())
	}
	if n <= voters/2 || absDur(med) <= c.o.MaxClockSkew {
		return c.stepping.Load()
	}
	c.handOver(ctx, "clock_skew", fmt.Sprintf("this leader's clock is %s %s the median of %d fresh nodes' clocks (itself included), more than max_clock_skew %s: it stops stamping times and hands leadership over",
		absDur(med), aheadBehind(med), n, c.o.MaxClockSkew))
	return true
}

// aheadBehind says where the leader's clock is, given the others' median
// offset from it.
func aheadBehind(med time.Duration) string {
	if med < 0 {
		return "ahead of"
	}
	return "behind"
}

// handOver stops this leader from stamping and transfers leadership. It
// logs once per leadership (at Error) and retries the transfer each round.
func (c *Cluster) handOver(ctx context.Context, reason, why string) {
	if !c.stepping.Swap(true) {
		c.met.stepDowns.WithLabelValues(reason).Inc()
		c.log.Error("cluster leader stepping down", "from", "leader", "to", "follower", "reason", reason, "detail", why)
	}
	if err := wait(ctx, c.raft.LeadershipTransfer()); err != nil {
		c.log.Warn("leadership transfer failed; still not stamping", "reason", reason, "err", err)
	}
}

// SetMembers changes the member list (after a configuration reload). The
// leader brings raft's membership to it one change at a time: additions
// and suffrage or address changes first, then removals. The TLS checks use
// the new list at once. A leader never removes itself: it stays until
// another leader removes it.
func (c *Cluster) SetMembers(ms []Member) error {
	if err := checkMembers(c.o.ID, ms, c.mux != nil); err != nil {
		return err
	}
	if c.mux == nil && len(ms) > 1 {
		return fmt.Errorf("cluster: a one-node cluster without TLS cannot grow to %d members", len(ms))
	}
	c.ros.set(ms)
	select {
	case c.membersSet <- struct{}{}:
	default:
	}
	return nil
}

// reconcile makes one membership change towards the configured members.
func (c *Cluster) reconcile(ctx context.Context) {
	f := c.raft.GetConfiguration()
	if err := wait(ctx, f); err != nil {
		return
	}
	cur := f.Configuration().Servers
	want := c.ros.get()
	timeout := time.Until(deadline(ctx, c.o.WriteTimeout))
	for _, m := range want {
		addr := c.addrOf(m)
		i := slices.IndexFunc(cur, func(s raft.Server) bool { return string(s.ID) == m.ID })
		var fut raft.IndexFuture
		switch {
		case i >= 0 && cur[i].Address == addr && cur[i].Suffrage == suffrage(m.Voter):
			continue
		case m.Voter:
			fut = c.raft.AddVoter(raft.ServerID(m.ID), addr, 0, timeout)
		case i >= 0 && cur[i].Suffrage == raft.Voter && cur[i].Address == addr:
			fut = c.raft.DemoteVoter(raft.ServerID(m.ID), 0, timeout)
		default:
			fut = c.raft.AddNonvoter(raft.ServerID(m.ID), addr, 0, timeout)
		}
		err := wait(ctx, fut)
		c.log.Info("cluster membership", "member", m.ID, "from", serverDesc(cur, i), "to", fmt.Sprintf("%s %s", suffrage(m.Voter), addr), "reason", "configuration", "err", errString(err))
		return
	}
	for _, s := range cur {
		if slices.ContainsFunc(want, func(m Member) bool { return m.ID == string(s.ID) }) {
			continue
		}
		if string(s.ID) == c.o.ID {
			continue
		}
		err := wait(ctx, c.raft.RemoveServer(s.ID, 0, timeout))
		c.log.Info("cluster membership", "member", string(s.ID), "from", fmt.Sprintf("%s %s", s.Suffrage, s.Address), "to", "removed", "reason", "configuration", "err", errString(err))
		return
	}
}

func serverDesc(cur []raft.Server, i int) string {
	if i < 0 {
		return "absent"
	}
	return fmt.Sprintf("%s %s", cur[i].Suffrage, cur[i].Address)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// beatLoop sends this node's beat every BeatInterval and, at most once per
// beat, a full VerdictSet when the cluster's record of this node's
// verdicts differs from what it says now.
func (c *Cluster) beatLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.o.BeatInterval)
	defer t.Stop()
	var lastSet time.Time
	for {
		ch := c.Changed()
		beat := false
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			beat = true
		case <-ch:
		}
		if !beat && (c.o.Verdicts == nil || time.Since(lastSet) < c.o.BeatInterval) {
			continue
		}
		v := c.View()
		if v.State == c.placehold || v.Halted != "" || !slices.Contains(v.State.Spec().Nodes, c.o.ID) {
			continue
		}
		var (
			obs []failover.Observation
			sv  []failover.SyncVerdict
		)
		if c.o.Verdicts != nil {
			obs, sv = c.o.Verdicts()
		}
		want := failover.VerdictsDigest(obs, sv)
		if beat {
			b := failover.Beat{Node: c.o.ID, Clock: c.o.Now().UTC(), Verdicts: want}
			if c.o.Digest != nil {
				b.Digest = c.o.Digest()
			}
			if err := c.Observe(c.ctx, []failover.Event{b}); err != nil && c.ctx.Err() == nil {
				c.log.Debug("beat not committed", "err", err)
			}
		}
		if c.o.Verdicts == nil || time.Since(lastSet) < c.o.BeatInterval || !v.HasQuorum {
			continue
		}
		if v.State.NodeVerdictsDigest(c.o.ID) == failover.VerdictsDigest(v.State.KnownVerdicts(obs, sv)) {
			continue
		}
		lastSet = time.Now()
		vs := failover.VerdictSet{Node: c.o.ID, Observations: obs, Sync: sv}
		if err := c.Observe(c.ctx, []failover.Event{vs}); err != nil && c.ctx.Err() == nil {
			c.log.Debug("verdict set not committed", "err", err)
		}
	}
}
