package failover

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// propSpec is the setup random sequences run against: three sites (london
// with no sync check), two services with geo routes, policies by seed.
func propSpec(r *rand.Rand, nodes int) Spec {
	mode := func() Mode {
		if r.IntN(2) == 0 {
			return Auto
		}
		return Manual
	}
	pol := func() Policy {
		return Policy{Failover: mode(), Failback: mode(), DownFor: 30 * time.Second,
			StableFor: 2 * time.Minute, MinInterval: time.Minute}
	}
	sp := Spec{
		Sites: []SiteSpec{
			{Name: "dallas", Endpoints: eps("d1", "d2"), SyncCheck: "replication"},
			{Name: "losangeles", Endpoints: eps("l1", "l2"), SyncCheck: "replication"},
			{Name: "london", Endpoints: eps("u1")},
		},
		Services: []ServiceSpec{
			{Name: "cas", Names: []string{"cas.example.com."}, Policy: pol(),
				Routes: []RouteSpec{{Name: "default", Sites: []string{"dallas", "losangeles", "london"}}}},
			{Name: "web", Names: []string{"www.example.com."}, Policy: pol(),
				Routes: []RouteSpec{{Name: "us", Sites: []string{"dallas", "london"}}, {Name: "eu", Sites: []string{"london", "dallas"}}}},
		},
		VoteTTL:                90 * time.Second,
		TrustHealthWithoutSync: r.IntN(4) == 0,
		HistoryLimit:           50,
	}
	for i := range nodes {
		sp.Nodes = append(sp.Nodes, fmt.Sprintf("ns%d", i+1))
	}
	return sp
}

// steps the clock takes: every threshold, just before, at and just after.
var propSteps = []time.Duration{0, 0, time.Nanosecond, time.Second, 10 * time.Second, 30*time.Second - time.Nanosecond,
	30 * time.Second, 30*time.Second + time.Nanosecond, time.Minute - time.Nanosecond, time.Minute,
	2*time.Minute - time.Nanosecond, 2 * time.Minute, 89 * time.Second, 90 * time.Second}

// gen makes random events: each site has a true health that flips now and
// then, and nodes mostly report the truth.
type gen struct {
	r     *rand.Rand
	sp    Spec
	now   time.Time
	truth map[string]bool
}

func (g *gen) node() string { return g.sp.Nodes[g.r.IntN(len(g.sp.Nodes))] }

func (g *gen) site() SiteSpec { return g.sp.Sites[g.r.IntN(len(g.sp.Sites))] }

func (g *gen) observation(node string, truthful bool) Event {
	site := g.site()
	ep := ""
	if g.r.IntN(10) > 0 {
		ep = site.Endpoints[g.r.IntN(len(site.Endpoints))].Name
	}
	up := g.truth[site.Name]
	if !truthful || g.r.IntN(10) == 0 {
		up = g.r.IntN(2) == 0
	}
	return Observation{Time: g.now, Node: node, Site: site.Name, Endpoint: ep,
		Check: []string{"https", "smtp"}[g.r.IntN(2)], Up: up, Reason: fmt.Sprintf("r%d", g.r.IntN(5))}
}

func (g *gen) command() Command {
	c := Command{Time: g.now, Actor: "op"}
	site := g.site().Name
	svc := g.sp.Services[g.r.IntN(len(g.sp.Services))]
	switch g.r.IntN(9) {
	case 0:
		c.Op, c.Site = OpPromote, site
	case 1, 2:
		c.Op, c.Service, c.Site = OpFailover, svc.Name, site
		if g.r.IntN(3) == 0 {
			c.Route = svc.Routes[g.r.IntN(len(svc.Routes))].Name
		}
	case 3:
		c.Op, c.Site = OpDrain, site
	case 4:
		c.Op, c.Site = OpUndrain, site
	case 5:
		c.Op, c.Service = OpMode, svc.Name
		c.Mode = []Mode{Auto, Manual}[g.r.IntN(2)]
	case 6:
		c.Op, c.Site = OpMarkSynced, site
	case 7:
		c.Op = OpFreeze
	case 8:
		c.Op = OpThaw
	}
	if g.r.IntN(5) == 0 {
		c.Force, c.Reason = true, "forced by test"
	}
	return c
}

// propRun drives one random sequence and checks every invariant after every
// step. It returns the event log and the final snapshot.
type propRun struct {
	t       *testing.T
	s       *State
	log     [][]byte // encoded events, in order
	old     []Decision
	lastMov map[string]time.Time // last change of each service's routes
	lastAut map[string]time.Time // last automatic decision of each service
	epoch   map[string]uint64
}

func (p *propRun) apply(e Event) (Result, error) {
	t := p.t
	t.Helper()
	b, err := EncodeEvent(e)
	if err != nil {
		t.Fatalf("encode %#v: %v", e, err)
	}
	e, err = DecodeEvent(b)
	if err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	pre := p.s.Clone()
	var preBytes []byte
	if len(p.log)%50 == 0 {
		preBytes, _ = MarshalSnapshot(pre)
	}
	res, err := Apply(p.s, e)
	if preBytes != nil {
		if b, _ := MarshalSnapshot(pre); !bytes.Equal(b, preBytes) {
			t.Fatalf("Apply(%#v) changed a clone taken before it", e)
		}
	}
	if err != nil && res.Entries != nil {
		t.Fatalf("an error with history entries: %v", err)
	}
	p.log = append(p.log, b)
	p.check(pre, e, res)
	return res, err
}

// propSeen counts what the random sequences exercised, so the test can show
// it is not vacuous.
var propSeen struct {
	failover, failback, drain, command, forced, stale, invalidated, allDown, awaiting, refused atomic.Int64
}

func (p *propRun) check(pre *State, e Event, res Result) {
	t, s := p.t, p.s
	t.Helper()
	if res.Ignored != "" {
		if e, ok := e.(Decision); ok && e.Epoch != pre.services[pre.svcIdx[e.Service]].epoch {
			propSeen.stale.Add(1)
		} else {
			propSeen.invalidated.Add(1)
		}
	}
	for _, sv := range s.services {
		for _, r := range sv.routes {
			switch r.cond {
			case AllDown:
				propSeen.allDown.Add(1)
			case AwaitingOperator:
				propSeen.awaiting.Add(1)
			}
		}
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after %#v:\n"+format, append([]any{e}, args...)...)
	}
	if s.now.Before(pre.now) {
		fail("clock went back")
	}
	newEpoch, moved, autoAt := map[string]uint64{}, map[string]time.Time{}, map[string]time.Time{}
	for _, en := range res.Entries {
		if en.Route == "" || en.From == "" {
			continue // not a route move
		}
		si := pre.svcIdx[en.Service]
		pol := pre.services[si].policy
		to, from := pre.siteIdx[en.To], pre.siteIdx[en.From]
		preTo, postTo := &pre.sites[to], &s.sites[to]
		auto := en.Kind == KindDecisionEntry
		switch {
		case en.Forced:
			propSeen.forced.Add(1)
		case !auto:
			propSeen.command.Add(1)
		case en.What == string(MoveFailover):
			propSeen.failover.Add(1)
		case en.What == string(MoveFailback):
			propSeen.failback.Add(1)
		case en.What == string(MoveDrain):
			propSeen.drain.Add(1)
		}
		// Never a down or drained site chosen unless forced.
		if !en.Forced && (postTo.health == Down || postTo.admin == Drained) {
			fail("moved %s/%s to %s which is %s/%s (entry %+v)", en.Service, en.Route, en.To, postTo.health, postTo.admin, en)
		}
		if auto && postTo.health != Up {
			fail("automatic move to %s which is %s", en.To, postTo.health)
		}
		// Never a fail-back (a move to a preferred site away from a site
		// that was not down or drained) before in_sync unless forced.
		ri := routeIndex(pre.spec.Services[si], en.Route)
		order := pre.services[si].routes[ri].sites
		preFrom := &pre.sites[from]
		if !en.Forced && slices.Index(order, to) < slices.Index(order, from) &&
			preFrom.health != Down && preFrom.admin != Drained && preTo.sync != InSync {
			fail("fail-back %s -> %s while %s is %s", en.From, en.To, en.To, preTo.sync)
		}
		if auto && en.What == string(MoveFailback) {
			since := preTo.healthSince
			if preTo.syncSince.After(since) {
				since = preTo.syncSince
			}
			if s.now.Sub(since) < pol.StableFor || preTo.sync != InSync {
				fail("automatic fail-back to %s stable only since %s", en.To, since)
			}
		}
		// Manual mode never moves by itself; nothing automatic while frozen.
		if auto {
			if pre.frozen {
				fail("automatic move while frozen")
			}
			if en.What == string(MoveFailback) && pol.Failback != Auto ||
				en.What != string(MoveFailback) && pol.Failover != Auto {
				fail("automatic %s with policy %+v", en.What, pol)
			}
			// At most one automatic decision per min_interval, counted from
			// the service's previous change of any kind.
			if last, ok := p.lastAut[en.Service]; ok && en.Time.Sub(last) < pol.MinInterval {
				fail("automatic decisions at %s and %s within min_interval", last, en.Time)
			}
			if last, ok := p.lastMov[en.Service]; ok && en.Time.Sub(last) < pol.MinInterval {
				fail("automatic decision at %s within min_interval of the change at %s", en.Time, last)
			}
		}
		// Epochs strictly increase: one new epoch per service per event.
		if prev := p.epoch[en.Service]; en.Epoch <= prev {
			fail("epoch %d after %d", en.Epoch, prev)
		}
		if e, ok := newEpoch[en.Service]; ok && e != en.Epoch {
			fail("two epochs %d and %d for %s in one event", e, en.Epoch, en.Service)
		}
		newEpoch[en.Service] = en.Epoch
		moved[en.Service] = en.Time
		if auto {
			autoAt[en.Service] = en.Time
		}
	}
	for svc, ep := range newEpoch {
		p.epoch[svc] = ep
		p.lastMov[svc] = moved[svc]
	}
	for svc, at := range autoAt {
		p.lastAut[svc] = at
	}
	for si := range s.services {
		if s.services[si].epoch < pre.services[si].epoch {
			fail("service epoch went down")
		}
		for ri := range s.services[si].routes {
			r, pr := &s.services[si].routes[ri], &pre.services[si].routes[ri]
			if r.active != pr.active && s.services[si].epoch == pre.services[si].epoch {
				fail("route moved without a new epoch")
			}
			if r.cond == AllDown && s.sites[r.active].health != Down {
				fail("all_down with a %s active site", s.sites[r.active].health)
			}
			if s.sites[r.active].sync != InSync {
				fail("active site %s is %s", s.spec.Sites[r.active].Name, s.sites[r.active].sync)
			}
		}
	}
	if len(s.history) > s.spec.HistoryLimit {
		fail("history of %d entries", len(s.history))
	}
}

func runProperty(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, seed*7919))
	sp := propSpec(r, 5+r.IntN(2))
	s, err := New(sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	p := &propRun{t: t, s: s, lastMov: map[string]time.Time{}, lastAut: map[string]time.Time{}, epoch: map[string]uint64{}}
	g := &gen{r: r, sp: sp, now: t0, truth: map[string]bool{"dallas": true, "losangeles": true, "london": true}}
	snapAt := r.IntN(steps)
	var snap []byte
	snapLog := 0
	for i := range steps {
		if i == snapAt {
			if snap, err = MarshalSnapshot(s); err != nil {
				t.Fatal(err)
			}
			snapLog = len(p.log)
		}
		g.now = g.now.Add(propSteps[r.IntN(len(propSteps))])
		if r.IntN(20) == 0 {
			site := g.site().Name
			g.truth[site] = !g.truth[site]
		}
		switch k := r.IntN(100); {
		case k < 25:
			_, _ = p.apply(g.observation(g.node(), true))
		case k < 45:
			// Most nodes see the same check the same way.
			o := g.observation(g.node(), true).(Observation)
			for _, n := range sp.Nodes {
				if r.IntN(5) > 0 {
					o.Node = n
					_, _ = p.apply(o)
				}
			}
		case k < 55:
			site := g.site()
			if site.SyncCheck != "" {
				in := r.IntN(10) < 7
				for _, n := range sp.Nodes {
					if r.IntN(3) > 0 {
						_, _ = p.apply(SyncVerdict{Time: g.now, Node: n, Site: site.Name, Check: site.SyncCheck,
							InSync: in, Reason: "lag"})
					}
				}
			}
		case k < 65:
			_, _ = p.apply(Beat{Time: g.now, Node: g.node()})
		case k < 72:
			_, _ = p.apply(Tick{Time: g.now})
		case k < 82:
			c := g.command()
			_, _ = p.apply(Tick{Time: g.now})
			pre := s.Clone()
			err := Check(s, c)
			if _, aerr := p.apply(c); (err == nil) != (aerr == nil) {
				t.Fatalf("Check(%s) = %v, Apply = %v", c, err, aerr)
			}
			if errors.Is(err, ErrRefused) {
				propSeen.refused.Add(1)
			}
			if err != nil {
				a, _ := MarshalSnapshot(pre)
				b, _ := MarshalSnapshot(s)
				if !bytes.Equal(a, b) {
					t.Fatalf("rejected %s changed the state", c)
				}
			}
		default:
			_, _ = p.apply(Tick{Time: g.now})
			ds := Decide(s, g.now)
			if s.frozen && len(ds) > 0 {
				t.Fatal("Decide while frozen")
			}
			for _, d := range ds {
				if r.IntN(10) == 0 {
					p.old = append(p.old, d)
					continue // lost for now (a leader change, say); it may come back late
				}
				res, _ := p.apply(d)
				if res.Ignored != "" {
					t.Fatalf("a fresh decision %+v was ignored: %s", d, res.Ignored)
				}
				p.old = append(p.old, d)
			}
			if len(p.old) > 0 && r.IntN(4) == 0 {
				// A deposed leader's decision arrives late.
				d := p.old[r.IntN(len(p.old))]
				d.Time = g.now
				pre := s.Clone()
				res, _ := p.apply(d)
				if res.Ignored == "" && d.Epoch < pre.services[pre.svcIdx[d.Service]].epoch {
					t.Fatalf("a stale decision %+v was applied", d)
				}
			}
		}
	}
	final, err := MarshalSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	// The same events from the start give the same bytes...
	replay := func(from *State, log [][]byte) []byte {
		for _, b := range log {
			e, err := DecodeEvent(b)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = Apply(from, e)
		}
		out, err := MarshalSnapshot(from)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	fresh, _ := New(sp, t0)
	if got := replay(fresh, p.log); !bytes.Equal(got, final) {
		t.Fatalf("seed %d: replay from the start differs", seed)
	}
	// ...and so do the remaining events from a snapshot taken on the way.
	restored, err := UnmarshalSnapshot(snap)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if got := replay(restored, p.log[snapLog:]); !bytes.Equal(got, final) {
		t.Fatalf("seed %d: replay from the snapshot at step %d differs", seed, snapAt)
	}
}

func TestPropertyRandomSequences(t *testing.T) {
	seeds, steps := 100, 400 // 40,000 checked steps
	if testing.Short() {
		seeds = 20
	}
	t.Cleanup(func() {
		p := &propSeen
		counts := []int64{p.failover.Load(), p.failback.Load(), p.drain.Load(), p.command.Load(), p.forced.Load(),
			p.stale.Load(), p.invalidated.Load(), p.allDown.Load(), p.awaiting.Load(), p.refused.Load()}
		t.Logf("exercised: auto failover %d, auto fail-back %d, auto drain %d, command moves %d, forced moves %d, "+
			"stale decisions %d, invalidated decisions %d, all_down route-steps %d, awaiting_operator route-steps %d, refused commands %d",
			counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6], counts[7], counts[8], counts[9])
		if !t.Failed() && !testing.Short() && slices.Contains(counts, 0) {
			t.Error("a rule was never exercised: the generator needs work")
		}
	})
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runProperty(t, seed, steps)
		})
	}
}

// TestPropertyMinorityNeverMoves: a minority of voters reporting anything at
// all, while the majority sees every site up, never moves a service.
func TestPropertyMinorityNeverMoves(t *testing.T) {
	seeds := 60
	if testing.Short() {
		seeds = 10
	}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 1))
		n := 5 + r.IntN(4) // 5..8 nodes
		sp := propSpec(r, n)
		for i := range sp.Services {
			sp.Services[i].Policy = Policy{Failover: Auto, Failback: Auto}
		}
		s, err := New(sp, t0)
		if err != nil {
			t.Fatal(err)
		}
		minority := (n - 1) / 2
		g := &gen{r: r, sp: sp, now: t0, truth: map[string]bool{"dallas": true, "losangeles": true, "london": true}}
		liars, honest := sp.Nodes[:minority], sp.Nodes[minority:]
		for i := range 300 {
			g.now = g.now.Add(propSteps[r.IntN(len(propSteps))])
			for _, h := range honest {
				if i > 0 {
					mustApply(t, s, Beat{Time: g.now, Node: h})
					continue
				}
				for _, site := range sp.Sites {
					for _, ep := range append([]string{""}, addrs(site.Endpoints)...) {
						for _, c := range []string{"https", "smtp"} {
							mustApply(t, s, Observation{Time: g.now, Node: h, Site: site.Name, Endpoint: ep, Check: c, Up: true})
						}
					}
					if site.SyncCheck != "" {
						mustApply(t, s, SyncVerdict{Time: g.now, Node: h, Site: site.Name, Check: site.SyncCheck, InSync: true})
					}
				}
			}
			for range 10 {
				liar := liars[r.IntN(len(liars))]
				mustApply(t, s, g.observation(liar, false))
				site := g.site()
				if site.SyncCheck != "" {
					mustApply(t, s, SyncVerdict{Time: g.now, Node: liar, Site: site.Name, Check: site.SyncCheck, InSync: r.IntN(2) == 0})
				}
			}
			mustApply(t, s, Tick{Time: g.now})
			if ds := Decide(s, g.now); len(ds) > 0 {
				t.Fatalf("seed %d: a minority of %d of %d nodes moved %+v", seed, minority, n, ds)
			}
			for i, site := range s.sites {
				if site.health != Up || (site.sync != InSync && sp.Sites[i].SyncCheck != "") {
					t.Fatalf("seed %d: site %s is %s/%s", seed, sp.Sites[i].Name, site.health, site.sync)
				}
			}
		}
		for _, sv := range s.services {
			if sv.epoch != 0 {
				t.Fatalf("seed %d: epoch %d", seed, sv.epoch)
			}
		}
	}
}

func mustApply(t *testing.T, s *State, e Event) {
	t.Helper()
	if _, err := Apply(s, e); err != nil {
		t.Fatal(err)
	}
}
