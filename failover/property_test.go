package failover

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The property tests' size and seed are flags, so a long run is one flag
// away:
//
//	go test ./failover -run Property -args -seed=7 -iters=200000
//
// Sequence i of a run uses seed+i; a failure names its sequence's seed, and
// -seed=<that> -iters=<steps> replays it alone.
var (
	propSeed  = flag.Uint64("seed", 1, "property tests: seed of the first random sequence (sequence i uses seed+i)")
	propIters = flag.Int("iters", 0, "property tests: random steps in all (0: 40000, or 8000 with -short or -race)")
	propSteps = flag.Int("steps", 400, "property tests: steps per random sequence")
)

// propPlan returns the first seed, the number of sequences and the steps per
// sequence for a run of about def steps (def/5 with -short) unless -iters
// says otherwise.
func propPlan(def int) (first uint64, seqs, steps int) {
	iters := *propIters
	if iters <= 0 {
		iters = def
		if testing.Short() || raceEnabled {
			iters = def / 5
		}
	}
	steps = max(1, *propSteps)
	return *propSeed, max(1, (iters+steps-1)/steps), steps
}

// propSpec is the setup random sequences start from: three sites (london
// with no sync check), two services with geo routes, policies by seed.
func propSpec(r *rand.Rand, nodes int) Spec {
	sp := Spec{
		Sites: []SiteSpec{
			{Name: "dallas", Endpoints: eps("d1", "d2"), SyncCheck: "replication"},
			{Name: "losangeles", Endpoints: eps("l1", "l2"), SyncCheck: "replication"},
			{Name: "london", Endpoints: eps("u1")},
		},
		Services: []ServiceSpec{
			{Name: "cas", Names: []string{"cas.example.com."}, Policy: randPolicy(r),
				Routes: []RouteSpec{{Name: "default", Sites: []string{"dallas", "losangeles", "london"}}}},
			{Name: "web", Names: []string{"www.example.com."}, Policy: randPolicy(r),
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

func randMode(r *rand.Rand) Mode { return []Mode{Auto, Manual}[r.IntN(2)] }

func randPolicy(r *rand.Rand) Policy {
	return Policy{Failover: randMode(r), Failback: randMode(r), DownFor: 30 * time.Second,
		StableFor: 2 * time.Minute, MinInterval: time.Minute}
}

// mutateSpec returns sp with one random change of the kinds a config reload
// makes: sites, routes and services added, removed, renamed, reordered;
// endpoints renamed or readdressed; sync checks, policies and voters changed.
// The result is valid (or sp itself, counted, if a change made it invalid).
func mutateSpec(r *rand.Rand, sp Spec) Spec {
	sp = cloneSpec(sp)
	pick := func(n int) int { return r.IntN(n) }
	siteNames := func() []string {
		var out []string
		for _, s := range sp.Sites {
			out = append(out, s.Name)
		}
		return out
	}
	unused := func(prefix string, taken func(string) bool) string {
		for {
			if n := fmt.Sprintf("%s%d", prefix, pick(8)); !taken(n) {
				return n
			}
		}
	}
	siteTaken := func(n string) bool {
		return slices.ContainsFunc(sp.Sites, func(s SiteSpec) bool { return s.Name == n })
	}
	svcTaken := func(n string) bool {
		return slices.ContainsFunc(sp.Services, func(s ServiceSpec) bool { return s.Name == n })
	}
	randRoute := func() []string {
		names := siteNames()
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		return names[:1+pick(len(names))]
	}
	renameSite := func(from, to string) {
		for i := range sp.Services {
			for j := range sp.Services[i].Routes {
				rs := sp.Services[i].Routes[j].Sites
				if k := slices.Index(rs, from); k >= 0 {
					rs[k] = to
				}
			}
		}
	}
	svc := &sp.Services[pick(len(sp.Services))]
	switch pick(14) {
	case 0: // a new site, listed somewhere
		name := unused("site", siteTaken)
		ss := SiteSpec{Name: name, Endpoints: eps(name + "-a")}
		if pick(2) == 0 {
			ss.SyncCheck = "replication"
		}
		sp.Sites = append(sp.Sites, ss)
		rt := &svc.Routes[pick(len(svc.Routes))]
		k := pick(len(rt.Sites) + 1)
		rt.Sites = slices.Insert(rt.Sites, k, name)
	case 1: // a site removed everywhere
		if len(sp.Sites) <= 2 {
			return sp
		}
		gone := sp.Sites[pick(len(sp.Sites))].Name
		sp.Sites = slices.DeleteFunc(sp.Sites, func(s SiteSpec) bool { return s.Name == gone })
		for i := range sp.Services {
			s := &sp.Services[i]
			for j := range s.Routes {
				s.Routes[j].Sites = slices.DeleteFunc(s.Routes[j].Sites, func(x string) bool { return x == gone })
			}
			s.Routes = slices.DeleteFunc(s.Routes, func(rt RouteSpec) bool { return len(rt.Sites) == 0 })
		}
		sp.Services = slices.DeleteFunc(sp.Services, func(s ServiceSpec) bool { return len(s.Routes) == 0 })
		if len(sp.Services) == 0 {
			sp.Services = []ServiceSpec{{Name: "cas", Names: []string{"cas.example.com."}, Policy: randPolicy(r),
				Routes: []RouteSpec{{Name: "default", Sites: randRoute()}}}}
		}
	case 2: // a site renamed
		i := pick(len(sp.Sites))
		to := unused("site", siteTaken)
		renameSite(sp.Sites[i].Name, to)
		sp.Sites[i].Name = to
	case 3: // a new route
		svc.Routes = append(svc.Routes, RouteSpec{Name: unused("r", func(n string) bool { return routeIndex(*svc, n) >= 0 }), Sites: randRoute()})
	case 4: // a route removed
		if len(svc.Routes) > 1 {
			i := pick(len(svc.Routes))
			svc.Routes = slices.Delete(svc.Routes, i, i+1)
		}
	case 5: // a route renamed
		rt := &svc.Routes[pick(len(svc.Routes))]
		rt.Name = unused("r", func(n string) bool { return routeIndex(*svc, n) >= 0 })
	case 6: // a route reordered
		rt := &svc.Routes[pick(len(svc.Routes))]
		r.Shuffle(len(rt.Sites), func(i, j int) { rt.Sites[i], rt.Sites[j] = rt.Sites[j], rt.Sites[i] })
	case 7: // a route's site list changed
		rt := &svc.Routes[pick(len(svc.Routes))]
		rt.Sites = randRoute()
	case 8: // a new service
		name := unused("svc", svcTaken)
		sp.Services = append(sp.Services, ServiceSpec{Name: name, Names: []string{name + ".example.com."}, Policy: randPolicy(r),
			Routes: []RouteSpec{{Name: "default", Sites: randRoute()}}})
	case 9: // a service removed
		if len(sp.Services) > 1 {
			i := pick(len(sp.Services))
			sp.Services = slices.Delete(sp.Services, i, i+1)
		}
	case 10: // a service renamed
		svc.Name = unused("svc", svcTaken)
		svc.Names = []string{svc.Name + ".example.com."}
	case 11: // endpoints renamed, readdressed or added
		s := &sp.Sites[pick(len(sp.Sites))]
		e := &s.Endpoints[pick(len(s.Endpoints))]
		switch pick(3) {
		case 0:
			e.Name += "x"
		case 1:
			e.Address += "y"
		default:
			s.Endpoints = append(s.Endpoints, Endpoint{Name: s.Name + fmt.Sprint(len(s.Endpoints)) + "z", Address: "z"})
		}
	case 12: // policies and sync checks
		switch pick(3) {
		case 0:
			svc.Policy = randPolicy(r)
		case 1:
			s := &sp.Sites[pick(len(sp.Sites))]
			s.SyncCheck = []string{"", "replication", "lag"}[pick(3)]
		default:
			sp.TrustHealthWithoutSync = !sp.TrustHealthWithoutSync
		}
	case 13: // a voter added or removed (3..7)
		if n := len(sp.Nodes); n < 7 && (n <= 3 || pick(2) == 0) {
			sp.Nodes = append(sp.Nodes, unused("ns", func(x string) bool { return slices.Contains(sp.Nodes, x) }))
		} else if n > 3 {
			i := pick(n)
			sp.Nodes = slices.Delete(sp.Nodes, i, i+1)
		}
	}
	if _, err := normalize(sp); err != nil {
		propSeen.badSpec.Add(1)
		panic(fmt.Sprintf("mutateSpec made an invalid spec: %v", err))
	}
	return sp
}

// steps the clock takes: every threshold, just before, at and just after.
var propSteps_ = []time.Duration{0, 0, time.Nanosecond, time.Second, 10 * time.Second, 30*time.Second - time.Nanosecond,
	30 * time.Second, 30*time.Second + time.Nanosecond, time.Minute - time.Nanosecond, time.Minute,
	2*time.Minute - time.Nanosecond, 2 * time.Minute, 89 * time.Second, 90 * time.Second}

// gen makes random events: each site has a true health that flips now and
// then, and nodes mostly report the truth. While partitioned, only a
// minority of the voters speaks.
type gen struct {
	r         *rand.Rand
	sp        Spec
	now       time.Time
	truth     map[string]bool
	speakers  []string // nil: everyone
	partition int      // steps left in the current partition
}

func (g *gen) voters() []string {
	if g.speakers != nil {
		return g.speakers
	}
	return g.sp.Nodes
}

func (g *gen) node() string { v := g.voters(); return v[g.r.IntN(len(v))] }

func (g *gen) site() SiteSpec { return g.sp.Sites[g.r.IntN(len(g.sp.Sites))] }

func (g *gen) up(site string) bool {
	up, ok := g.truth[site]
	return up || !ok
}

func (g *gen) observation(node string, truthful bool) Observation {
	site := g.site()
	ep := ""
	if g.r.IntN(10) > 0 {
		ep = site.Endpoints[g.r.IntN(len(site.Endpoints))].Name
	}
	up := g.up(site.Name)
	if !truthful || g.r.IntN(10) == 0 {
		up = g.r.IntN(2) == 0
	}
	return Observation{Time: g.now, Node: node, Site: site.Name, Endpoint: ep,
		Check: []string{"https", "smtp"}[g.r.IntN(2)], Up: up, Reason: fmt.Sprintf("r%d", g.r.IntN(5))}
}

// verdictSet is a node's full set: mostly the truth on some checks, with
// now and then a verdict on what the spec does not have.
func (g *gen) verdictSet(node string) VerdictSet {
	v := VerdictSet{Time: g.now, Node: node}
	seen := map[[3]string]bool{}
	for range g.r.IntN(8) {
		o := g.observation("", true)
		if g.r.IntN(20) == 0 {
			o.Site = "atlantis"
		}
		k := [3]string{o.Site, o.Endpoint, o.Check}
		if !seen[k] {
			seen[k] = true
			v.Observations = append(v.Observations, o)
		}
	}
	for _, s := range g.sp.Sites {
		if s.SyncCheck != "" && g.r.IntN(2) == 0 {
			v.Sync = append(v.Sync, SyncVerdict{Site: s.Name, Check: s.SyncCheck, InSync: g.r.IntN(10) < 7, Reason: "lag"})
		}
	}
	return v
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
		c.Mode = randMode(g.r)
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

// logStep is one step of a sequence, for replay: an encoded event, or a
// Respec.
type logStep struct {
	event []byte
	spec  *Spec
	at    time.Time
}

// propRun drives one random sequence and checks every invariant after every
// step.
type propRun struct {
	t        *testing.T
	seed     uint64
	steps    int
	s        *State
	log      []logStep
	old      []Decision
	lastMov  map[string]time.Time // last change of each service's routes
	lastAut  map[string]time.Time // last automatic decision of each service
	maxEpoch map[string]uint64    // highest epoch seen per service, and per "service/route"
}

// fatalf fails the sequence, saying how to replay it.
func (p *propRun) fatalf(format string, args ...any) {
	p.t.Helper()
	top, _, _ := strings.Cut(p.t.Name(), "/")
	flagSeed := p.seed
	if top == "TestPropertyZeroStableFor" {
		flagSeed -= zeroStableSeeds
	}
	p.t.Fatalf("seed %d, step %d (replay: go test ./failover -run %s -args -seed=%d -iters=%d):\n"+format,
		append([]any{p.seed, len(p.log), top, flagSeed, p.steps}, args...)...)
}

func (p *propRun) apply(e Event) (Result, error) {
	p.t.Helper()
	b, err := EncodeEvent(e)
	if err != nil {
		p.fatalf("encode %#v: %v", e, err)
	}
	e, err = DecodeEvent(b)
	if err != nil {
		p.fatalf("decode %q: %v", b, err)
	}
	pre := p.s.Clone()
	var preBytes []byte
	if len(p.log)%50 == 0 {
		preBytes, _ = MarshalSnapshot(pre)
	}
	res, err := Apply(p.s, e)
	if preBytes != nil {
		if b, _ := MarshalSnapshot(pre); !bytes.Equal(b, preBytes) {
			p.fatalf("Apply(%#v) changed a clone taken before it", e)
		}
	}
	if err != nil && res.Entries != nil {
		p.fatalf("an error with history entries: %v", err)
	}
	p.log = append(p.log, logStep{event: b})
	if _, ok := e.(Unknown); !ok {
		p.check(pre, e, res.Entries, res)
	}
	return res, err
}

func (p *propRun) respec(sp Spec, at time.Time) {
	p.t.Helper()
	pre := p.s
	preBytes, _ := MarshalSnapshot(pre)
	n, err := Respec(pre, sp, at)
	if err != nil {
		p.fatalf("Respec: %v", err)
	}
	if b, _ := MarshalSnapshot(pre); !bytes.Equal(b, preBytes) {
		p.fatalf("Respec changed the old state")
	}
	var added []Entry
	for _, e := range n.history {
		if e.Seq > pre.seq {
			added = append(added, e)
		}
	}
	p.s = n
	p.log = append(p.log, logStep{spec: &sp, at: at})
	propSeen.respec.Add(1)
	p.check(pre, nil, added, Result{})
}

// propSeen counts what the random sequences exercised, so the test can show
// it is not vacuous.
var propSeen struct {
	failover, failback, drain, command, forced, stale, invalidated, allDown, awaiting, refused,
	respec, respecMoves, respecNew, renamed, verdictSets, clamped, partitioned, badSpec,
	markRefused, attested, resentAttested, batches atomic.Int64
	// steps run by the sequences that ran (a -run filter may pick a few).
	steps atomic.Int64
}

// behindByQuorum reports whether a quorum of s's fresh nodes reports the
// named site's sync check not in sync (counted here, not by the state's own
// code), not counting verdicts a forced mark-synced attested.
func behindByQuorum(s *State, site string) bool {
	i := s.siteIdx[site]
	if s.spec.Sites[i].SyncCheck == "" {
		return false
	}
	n := 0
	for j, v := range s.sites[i].syncVotes {
		if v.set && !v.attested && !v.inSync && s.nodes[j].fresh {
			n++
		}
	}
	return n >= s.quorum
}

// routeKey names a route across specs.
func routeKey(svc, route string) string { return svc + "/" + route }

// statusIndex is a state's status by name (the parts the invariants read;
// cheaper than Status, which the run would call a million times).
type statusIndex struct {
	heard  bool   // some node has reported
	st     Status // Quorum, FreshNodes; Services with Name, Epoch, Policy and Routes
	sites  map[string]SiteStatus
	routes map[string]RouteStatus
	svcs   map[string]ServiceStatus
}

func index(s *State) statusIndex {
	x := statusIndex{st: Status{Quorum: s.quorum, FreshNodes: s.fresh}, sites: make(map[string]SiteStatus, len(s.sites)),
		routes: map[string]RouteStatus{}, svcs: make(map[string]ServiceStatus, len(s.services)),
		heard: slices.ContainsFunc(s.nodes, func(n node) bool { return !n.lastSeen.IsZero() })}
	for i := range s.sites {
		st := &s.sites[i]
		x.sites[s.spec.Sites[i].Name] = SiteStatus{Name: s.spec.Sites[i].Name, Admin: st.admin, Health: st.health,
			HealthSince: st.healthSince, Sync: st.sync, SyncSince: st.syncSince}
	}
	for i := range s.services {
		sv, sp := &s.services[i], &s.spec.Services[i]
		ss := ServiceStatus{Name: sp.Name, Policy: sv.policy, Epoch: sv.epoch}
		for j := range sv.routes {
			r := &sv.routes[j]
			rs := RouteStatus{Name: sp.Routes[j].Name, Sites: sp.Routes[j].Sites, Active: s.spec.Sites[r.active].Name,
				Epoch: r.epoch, Since: r.since, Reason: r.reason, Condition: r.cond}
			ss.Routes = append(ss.Routes, rs)
			x.routes[routeKey(sp.Name, rs.Name)] = rs
		}
		x.svcs[sp.Name] = ss
		x.st.Services = append(x.st.Services, ss)
	}
	return x
}

// check verifies every invariant after one step from pre to p.s: e is the
// event (nil for a Respec), added the history entries the step added.
func (p *propRun) check(pre *State, e Event, added []Entry, res Result) {
	p.t.Helper()
	s := p.s
	fail := func(format string, args ...any) {
		p.t.Helper()
		p.fatalf("after %#v:\n"+format, append([]any{e}, args...)...)
	}
	if res.Ignored != "" {
		if d, ok := e.(Decision); ok && d.Epoch != pre.services[pre.svcIdx[d.Service]].epoch {
			propSeen.stale.Add(1)
		} else if ok {
			propSeen.invalidated.Add(1)
		}
	}
	if res.ClockClamped != nil {
		propSeen.clamped.Add(1)
	}
	if s.now.Before(pre.now) {
		fail("clock went back")
	}
	if !encodable(s.now) {
		fail("state time %s does not encode", s.now)
	}
	// The state as a Tick at the step's time leaves it, before the step
	// takes effect: health, sync and admin as the move saw them.
	preT := pre.Clone()
	if e != nil {
		if err := preT.validate(e); err == nil {
			t, _ := preT.stepTime(e.EventTime())
			preT.refresh(t)
		}
	} else {
		preT.refresh(s.now)
	}
	before, after, atTick := index(pre), index(s), index(preT)

	// AnswersVersion counts changes of Answers, one per step.
	changed := !reflect.DeepEqual(pre.Answers(), s.Answers())
	if want := pre.answers + map[bool]uint64{true: 1}[changed]; s.answers != want {
		fail("answers version %d after %d (answers changed: %v)", s.answers, pre.answers, changed)
	}

	// Renamed routes (Respec only) keep their state.
	renamedFrom := map[string]string{}
	for _, en := range added {
		var from, to string
		if en.Kind != KindConfig || !strings.Contains(en.Note, " renamed to ") {
			continue
		}
		if _, err := fmt.Sscanf(strings.ReplaceAll(en.Note, ":", " "), "route %s renamed to %s", &from, &to); err != nil {
			fail("rename entry %+v: %v", en, err)
		}
		renamedFrom[routeKey(en.Service, to)] = routeKey(en.Service, from)
		propSeen.renamed.Add(1)
	}

	cmd, isCmd := e.(Command)
	forced := isCmd && cmd.Force
	// An operator's attestation never overrides what a quorum of fresh
	// nodes says the site's sync check tells: else mark-synced then promote
	// is a path around resync.
	if isCmd && !forced && cmd.Op == OpMarkSynced && len(added) > 0 {
		if behindByQuorum(preT, cmd.Site) {
			fail("unforced mark-synced %s accepted while a quorum of fresh nodes reports its sync check not in sync", cmd.Site)
		}
		propSeen.attested.Add(1)
	}
	// A forced mark-synced holds: a node re-sending the verdict it held then
	// does not take in_sync away. Attested votes exist only on in_sync
	// sites, and only a forced mark-synced makes them.
	if sv, isSync := e.(SyncVerdict); isSync {
		i := preT.siteIdx[sv.Site]
		if v := preT.sites[i].syncVotes[preT.nodeIdx[sv.Node]]; v.set && v.attested && v.inSync == sv.InSync {
			propSeen.resentAttested.Add(1)
			// Rule 2 still applies: the re-send makes the node fresh again,
			// its check votes may count again, and a site they make down
			// while it is active nowhere must resync.
			exposed := s.sites[i].health == Down && s.sites[i].activeOn == 0
			if preT.sites[i].sync == InSync && s.sites[i].sync != InSync && !exposed {
				fail("%s lost in_sync on a re-send of the verdict %s held at a forced mark-synced", sv.Site, sv.Node)
			}
		}
	}
	for i := range s.sites {
		for n, v := range s.sites[i].syncVotes {
			if v.attested && (!v.set || s.sites[i].sync != InSync) {
				fail("%s: node %s's attested sync vote %+v on a %s site", s.spec.Sites[i].Name, s.spec.Nodes[n], v, s.sites[i].sync)
			}
			if !v.attested || forced && cmd.Op == OpMarkSynced {
				continue
			}
			pi, ok1 := pre.siteIdx[s.spec.Sites[i].Name]
			pn, ok2 := pre.nodeIdx[s.spec.Nodes[n]]
			if !ok1 || !ok2 || !pre.sites[pi].syncVotes[pn].attested {
				fail("%s: node %s's sync vote became attested without a forced mark-synced", s.spec.Sites[i].Name, s.spec.Nodes[n])
			}
		}
	}
	_, isDecision := e.(Decision)
	ok := func(name string) bool { // a target anyone may take: up, undrained, in_sync
		st, found := atTick.sites[name]
		return found && st.Health == Up && st.Admin != Drained && st.Sync == InSync
	}
	for key, r := range after.routes {
		oldKey := key
		if k, renamed := renamedFrom[key]; renamed {
			oldKey = k
		}
		old, found := before.routes[oldKey]
		if found && oldKey != key && (old.Active != r.Active || !old.Since.Equal(r.Since) || old.Reason != r.Reason ||
			r.Epoch != after.svcs[strings.SplitN(key, "/", 2)[0]].Epoch) {
			fail("renamed route %s -> %s did not keep its state: %+v then %+v", oldKey, key, old, r)
		}
		if found && old.Active == r.Active {
			continue
		}
		// r moved, or is new.
		svc := strings.SplitN(key, "/", 2)[0]
		if found && after.svcs[svc].Epoch <= before.svcs[svc].Epoch {
			fail("route %s moved without a new epoch", key)
		}
		if forced {
			continue
		}
		x := atTick.sites[r.Active] // zero value for a new site: no health, no sync
		// What the route offered: a site anyone may take; undrained sites
		// that are up, in_sync, or not resyncing.
		anyOK, allDrained, anyUp, anyInSync, anyNotResyncing := false, true, false, false, false
		for _, name := range r.Sites {
			st := atTick.sites[name]
			anyOK = anyOK || ok(name)
			allDrained = allDrained && st.Admin == Drained
			if st.Admin != Drained {
				anyUp = anyUp || st.Health == Up
				anyInSync = anyInSync || st.Sync == InSync
				anyNotResyncing = anyNotResyncing || st.Sync != Resyncing
			}
		}
		oldActive := atTick.sites[old.Active]
		awayFromBad := !found || oldActive.Health == Down || oldActive.Admin == Drained || !slices.Contains(r.Sites, old.Active)
		switch {
		case e == nil: // Respec: no path around resync
			if found {
				propSeen.respecMoves.Add(1)
			} else {
				propSeen.respecNew.Add(1)
			}
			switch {
			case x.Admin == Drained && !allDrained:
				fail("respec put %s on drained %s", key, r.Active)
			case x.Health != Up && anyUp:
				fail("respec put %s on %s %s while an undrained site was up", key, x.Health, r.Active)
			case x.Sync == Resyncing && x.Health != Up && anyNotResyncing:
				fail("respec put %s on resyncing %s, not up, while an undrained site was not resyncing", key, r.Active)
			case x.Sync != InSync && x.Health != Up && anyInSync && atTick.heard:
				fail("respec put %s on %s (%s, %s) while an undrained site was in_sync", key, r.Active, x.Health, x.Sync)
			case anyOK && !ok(r.Active):
				fail("respec put %s on %s (%s/%s/%s) while a site was up, undrained and in_sync", key, r.Active, x.Health, x.Admin, x.Sync)
			case !found && ok(r.Sites[0]) && r.Active != r.Sites[0]:
				fail("respec started new route %s on %s, not its qualifying first preference", key, r.Active)
			}
		default: // an unforced command or a decision
			if x.Health == Down || x.Admin == Drained {
				fail("moved %s onto %s which is %s/%s", key, r.Active, x.Health, x.Admin)
			}
			if isDecision && x.Health != Up {
				fail("automatic move of %s onto %s which is %s", key, r.Active, x.Health)
			}
			if x.Sync != InSync && !awayFromBad {
				fail("moved %s onto %s (%s) away from %s which is neither down nor drained", key, r.Active, x.Sync, old.Active)
			}
			if isDecision && x.Sync != InSync && anyOK {
				fail("decision moved %s onto %s (%s) while a site was up, undrained and in_sync", key, r.Active, x.Sync)
			}
		}
	}

	// Epochs never decrease, per service and per route (by name, across
	// removals and renames).
	for _, sv := range after.st.Services {
		if sv.Epoch < p.maxEpoch[sv.Name] {
			fail("service %s epoch %d after %d", sv.Name, sv.Epoch, p.maxEpoch[sv.Name])
		}
		p.maxEpoch[sv.Name] = sv.Epoch
		for _, r := range sv.Routes {
			k := routeKey(sv.Name, r.Name)
			if r.Epoch < p.maxEpoch[k] || r.Epoch > sv.Epoch {
				fail("route %s epoch %d after %d (service at %d)", k, r.Epoch, p.maxEpoch[k], sv.Epoch)
			}
			p.maxEpoch[k] = r.Epoch
		}
	}

	// A minority of the configured voters never decides anything: every
	// verdict needs a majority of them (MinQuorum is 0 here).
	majority := len(s.spec.Nodes)/2 + 1
	if after.st.Quorum < majority {
		fail("quorum %d below a majority %d of %d voters", after.st.Quorum, majority, len(s.spec.Nodes))
	}
	for i := range s.sites {
		st := &s.sites[i]
		for j := -1; j < len(st.eps); j++ {
			ep := &st.wide
			if j >= 0 {
				ep = &st.eps[j]
			}
			if up, down := s.tally(ep); ep.health == Down && down < majority || ep.health == Up && up < majority {
				fail("%s endpoint %d is %s with %d up and %d down votes of %d voters", s.spec.Sites[i].Name, j, ep.health, up, down, len(s.spec.Nodes))
			}
		}
	}

	// History entries of route moves: decisions keep to their policy.
	newEpoch, moved, autoAt := map[string]uint64{}, map[string]time.Time{}, map[string]time.Time{}
	for _, en := range added {
		if en.Route == "" || en.From == "" {
			continue // not a route move
		}
		auto := en.Kind == KindDecisionEntry
		switch {
		case en.Kind == KindConfig:
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
		if auto {
			if after.st.FreshNodes < majority {
				fail("automatic move with %d fresh of %d voters", after.st.FreshNodes, len(s.spec.Nodes))
			}
			pol := before.svcs[en.Service].Policy
			to := atTick.sites[en.To]
			if pre.frozen {
				fail("automatic move while frozen")
			}
			if en.What == string(MoveFailback) && pol.Failback != Auto || en.What != string(MoveFailback) && pol.Failover != Auto {
				fail("automatic %s with policy %+v", en.What, pol)
			}
			if en.What == string(MoveFailback) {
				since := to.HealthSince
				if to.SyncSince.After(since) {
					since = to.SyncSince
				}
				if s.now.Sub(since) < pol.StableFor || to.Sync != InSync {
					fail("automatic fail-back to %s stable only since %s", en.To, since)
				}
			}
			// At most one automatic decision per min_interval, counted from
			// the service's previous change of any kind.
			if last, ok := p.lastAut[en.Service]; ok && en.Time.Sub(last) < pol.MinInterval {
				fail("automatic decisions at %s and %s within min_interval", last, en.Time)
			}
			if last, ok := p.lastMov[en.Service]; ok && en.Time.Sub(last) < pol.MinInterval {
				fail("automatic decision at %s within min_interval of the change at %s", en.Time, last)
			}
			autoAt[en.Service] = en.Time
		}
		if e, ok := newEpoch[en.Service]; ok && e != en.Epoch {
			fail("two epochs %d and %d for %s in one step", e, en.Epoch, en.Service)
		}
		newEpoch[en.Service] = en.Epoch
		moved[en.Service] = en.Time
	}
	for svc := range p.lastMov {
		if _, ok := after.svcs[svc]; !ok {
			delete(p.lastMov, svc) // removed: if it comes back, it is a new service
			delete(p.lastAut, svc)
		}
	}
	for svc := range newEpoch {
		p.lastMov[svc] = moved[svc]
	}
	for svc, at := range autoAt {
		p.lastAut[svc] = at
	}

	for _, sv := range after.st.Services {
		for _, r := range sv.Routes {
			a := after.sites[r.Active]
			if r.Condition == AllDown && a.Health != Down {
				fail("all_down with a %s active site", a.Health)
			}
			if r.Condition == Stranded && a.Admin != Drained {
				fail("stranded with an undrained active site")
			}
			if a.Sync != InSync {
				fail("active site %s is %s", r.Active, a.Sync)
			}
			switch r.Condition {
			case AllDown:
				propSeen.allDown.Add(1)
			case AwaitingOperator:
				propSeen.awaiting.Add(1)
			}
		}
	}
	if len(s.history) > s.spec.HistoryLimit {
		fail("history of %d entries", len(s.history))
	}
}

func runProperty(t *testing.T, seed uint64, steps int, tweak func(Spec) Spec) {
	r := rand.New(rand.NewPCG(seed, seed*7919))
	sp := tweak(propSpec(r, 5+r.IntN(2)))
	s, err := New(sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Clone()
	p := &propRun{t: t, seed: seed, steps: steps, s: s, lastMov: map[string]time.Time{}, lastAut: map[string]time.Time{}, maxEpoch: map[string]uint64{}}
	g := &gen{r: r, sp: s.Spec(), now: t0, truth: map[string]bool{}}
	snapAt := r.IntN(steps)
	var snap []byte
	snapLog := 0
	for i := range steps {
		if i == snapAt {
			if snap, err = MarshalSnapshot(p.s); err != nil {
				t.Fatal(err)
			}
			snapLog = len(p.log)
		}
		g.now = g.now.Add(propSteps_[r.IntN(len(propSteps_))])
		if r.IntN(20) == 0 {
			site := g.site().Name
			g.truth[site] = !g.up(site)
		}
		// Now and then only a minority of the voters speaks for a while.
		if g.partition > 0 {
			g.partition--
			if g.partition == 0 {
				g.speakers = nil
			}
		} else if r.IntN(100) == 0 {
			nodes := slices.Clone(g.sp.Nodes)
			r.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
			g.speakers, g.partition = nodes[:1+r.IntN((len(nodes)-1)/2)], 20+r.IntN(60)
		}
		switch k := r.IntN(100); {
		case k < 3:
			p.respec(tweak(mutateSpec(r, p.s.Spec())), g.now)
			g.sp = p.s.Spec()
			g.speakers = nil
		case k < 20:
			_, _ = p.apply(g.observation(g.node(), true))
		case k < 38:
			// Most nodes see the same check the same way.
			o := g.observation(g.node(), true)
			for _, n := range g.voters() {
				if r.IntN(5) > 0 {
					o.Node = n
					_, _ = p.apply(o)
				}
			}
		case k < 46:
			site := g.site()
			if site.SyncCheck != "" {
				in := r.IntN(10) < 7
				// Nodes re-send their current verdict every beat: now and
				// then a second round, with a new reason.
				for round := range 1 + r.IntN(2) {
					for _, n := range g.voters() {
						if r.IntN(3) > 0 {
							_, _ = p.apply(SyncVerdict{Time: g.now, Node: n, Site: site.Name, Check: site.SyncCheck, InSync: in,
								Reason: fmt.Sprintf("lag %d", round)})
						}
					}
				}
			}
		case k < 50:
			p.verdictSet(g.verdictSet(g.node()))
		case k < 58:
			b := Beat{Time: g.now, Node: g.node()}
			if r.IntN(2) == 0 {
				b.Clock, b.Digest, b.Verdicts = g.now.Add(-time.Duration(r.IntN(1000))*time.Millisecond), "sha256:d1", "sha256:v1"
			}
			_, _ = p.apply(b)
		case k < 64:
			at := g.now
			if r.IntN(200) == 0 {
				at = at.Add(time.Duration(r.Int64N(int64(100 * 365 * 24 * time.Hour)))) // a wild clock
			}
			_, _ = p.apply(Tick{Time: at})
		case k < 76:
			c := g.command()
			_, _ = p.apply(Tick{Time: g.now})
			pre := p.s.Clone()
			err := Check(p.s, c)
			if _, aerr := p.apply(c); (err == nil) != (aerr == nil) {
				p.fatalf("Check(%s) = %v, Apply = %v", c, err, aerr)
			}
			if errors.Is(err, ErrRefused) {
				propSeen.refused.Add(1)
				if c.Op == OpMarkSynced && strings.Contains(err.Error(), "sync check") {
					propSeen.markRefused.Add(1)
				}
			}
			if err != nil {
				a, _ := MarshalSnapshot(pre)
				b, _ := MarshalSnapshot(p.s)
				if !bytes.Equal(a, b) {
					p.fatalf("rejected %s changed the state", c)
				}
			}
		default:
			_, _ = p.apply(Tick{Time: g.now})
			ds := Decide(p.s, g.now)
			if p.s.frozen && len(ds) > 0 {
				p.fatalf("Decide while frozen")
			}
			if g.speakers != nil {
				propSeen.partitioned.Add(1)
			}
			if p.s.fresh < len(p.s.spec.Nodes)/2+1 && len(ds) > 0 {
				p.fatalf("Decide with %d fresh of %d voters proposed %+v", p.s.fresh, len(p.s.spec.Nodes), ds)
			}
			p.sequential(ds, g.now)
			lost := false
			for _, d := range ds {
				// Lost for now (a leader change, say); it may come back
				// late. The decisions after a lost one are lost with it:
				// each was decided with the ones before it applied (the
				// leader appends them as one entry, all or none).
				if lost = lost || r.IntN(5) == 0; lost {
					p.old = append(p.old, d)
					continue
				}
				res, _ := p.apply(d)
				if res.Ignored != "" {
					p.fatalf("a fresh decision %+v was ignored: %s", d, res.Ignored)
				}
				p.old = append(p.old, d)
			}
			if len(p.old) > 0 && r.IntN(2) == 0 {
				// A deposed leader's decision arrives late.
				d := p.old[r.IntN(len(p.old))]
				d.Time = g.now
				pre := p.s.Clone()
				res, err := p.apply(d)
				if si, ok := pre.svcIdx[d.Service]; ok && err == nil && res.Ignored == "" && d.Epoch < pre.services[si].epoch {
					p.fatalf("a stale decision %+v was applied", d)
				}
			}
		}
	}
	propSeen.steps.Add(int64(steps))
	final, err := MarshalSnapshot(p.s)
	if err != nil {
		t.Fatal(err)
	}
	// The same steps from the start give the same bytes...
	replay := func(from *State, log []logStep) []byte {
		for _, st := range log {
			if st.spec != nil {
				if from, err = Respec(from, *st.spec, st.at); err != nil {
					t.Fatal(err)
				}
				continue
			}
			e, err := DecodeEvent(st.event)
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
	if got := replay(first, p.log); !bytes.Equal(got, final) {
		p.fatalf("replay from the start differs")
	}
	// ...and so do the remaining steps from a snapshot taken on the way.
	restored, err := UnmarshalSnapshot(snap)
	if err != nil {
		p.fatalf("%v", err)
	}
	if got := replay(restored, p.log[snapLog:]); !bytes.Equal(got, final) {
		p.fatalf("replay from the snapshot at step %d differs", snapAt)
	}
}

// sequential checks Decide's decisions ds at now against a plain
// reference: on a clone of the state, service by service in order, the
// moves propose makes, each service's decision applied (and accepted)
// before the next is decided. It also checks that Decide left the state
// alone.
func (p *propRun) sequential(ds []Decision, now time.Time) {
	p.t.Helper()
	before, err := MarshalSnapshot(p.s)
	if err != nil {
		p.fatalf("%v", err)
	}
	if again := Decide(p.s, now); !reflect.DeepEqual(again, ds) {
		p.fatalf("Decide twice: %+v then %+v", ds, again)
	}
	if after, _ := MarshalSnapshot(p.s); !bytes.Equal(before, after) {
		p.fatalf("Decide changed the state")
	}
	if len(ds) > 1 {
		propSeen.batches.Add(1)
	}
	want := referenceDecide(p.s, now, p.fatalf)
	if !reflect.DeepEqual(ds, want) {
		p.fatalf("Decide = %+v\nwant (each decided after the ones before are applied) %+v", ds, want)
	}
}

// referenceDecide is Decide written the slow way: always on a clone, each
// service's decision applied before the next service is decided.
func referenceDecide(s *State, now time.Time, fatalf func(string, ...any)) []Decision {
	now, _ = s.stepTime(now)
	if s.frozen || (!s.validUntil.IsZero() && !now.Before(s.validUntil)) {
		return nil
	}
	c := s.Clone()
	var out []Decision
	for si := range c.services {
		sv := &c.services[si]
		if !sv.lastMove.IsZero() && now.Sub(sv.lastMove) < sv.policy.MinInterval {
			continue
		}
		var moves []Move
		for ri := range sv.routes {
			if m, ok := c.propose(si, ri, now); ok {
				moves = append(moves, m)
			}
		}
		if len(moves) == 0 {
			continue
		}
		d := Decision{Time: now, Service: c.spec.Services[si].Name, Epoch: sv.epoch, Moves: moves}
		if res, err := Apply(c, d); err != nil || res.Ignored != "" {
			fatalf("reference decision %+v not applied: %v %s", d, err, res.Ignored)
		}
		out = append(out, d)
	}
	return out
}

// verdictSet applies a node's full resend and checks that the state then
// holds exactly the set's known verdicts for it (less the sync verdicts on
// a site that lost in_sync at that moment: forgotten, to be resent).
func (p *propRun) verdictSet(v VerdictSet) {
	p.t.Helper()
	propSeen.verdictSets.Add(1)
	res, err := p.apply(v)
	if err != nil {
		p.fatalf("VerdictSet %+v: %v", v, err)
	}
	obs, sync := p.s.KnownVerdicts(v.Observations, v.Sync)
	if (len(obs) < len(v.Observations)) != strings.Contains(res.Ignored, "atlantis") {
		p.fatalf("skipped verdicts not reported: %q", res.Ignored)
	}
	got := p.s.NodeVerdictsDigest(v.Node)
	if got == VerdictsDigest(obs, sync) {
		return
	}
	kept := slices.DeleteFunc(slices.Clone(sync), func(sv SyncVerdict) bool {
		st := &p.s.sites[p.s.siteIdx[sv.Site]]
		return st.sync == Resyncing && st.syncSince.Equal(p.s.now)
	})
	if got != VerdictsDigest(obs, kept) {
		p.fatalf("after VerdictSet %+v the state holds other verdicts for %s", v, v.Node)
	}
}

func TestPropertyRandomSequences(t *testing.T) {
	first, seqs, steps := propPlan(40_000)
	t.Logf("seeds %d..%d, %d steps each (%d steps)", first, first+uint64(seqs)-1, steps, seqs*steps)
	t.Cleanup(func() {
		p := &propSeen
		counts := []int64{p.failover.Load(), p.failback.Load(), p.drain.Load(), p.command.Load(), p.forced.Load(),
			p.stale.Load(), p.invalidated.Load(), p.allDown.Load(), p.awaiting.Load(), p.refused.Load(),
			p.respec.Load(), p.respecMoves.Load(), p.respecNew.Load(), p.renamed.Load(), p.verdictSets.Load(),
			p.clamped.Load(), p.partitioned.Load(), p.markRefused.Load(), p.attested.Load(), p.resentAttested.Load(), p.batches.Load()}
		t.Logf("exercised: auto failover %d, auto fail-back %d, auto drain %d, command moves %d, forced moves %d, "+
			"stale decisions %d, invalidated decisions %d, all_down route-steps %d, awaiting_operator route-steps %d, "+
			"refused commands %d, respecs %d (orphaned routes moved %d, new routes placed %d, routes renamed %d), "+
			"verdict sets %d, clamped clock steps %d, decisions sought by a minority %d, "+
			"mark-synced refused by the sync check %d, unforced mark-synced accepted %d, attested sync verdicts re-sent %d, "+
			"several services decided at once %d",
			counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6], counts[7], counts[8], counts[9],
			counts[10], counts[11], counts[12], counts[13], counts[14], counts[15], counts[16], counts[17], counts[18], counts[19], counts[20])
		if !t.Failed() && p.steps.Load() >= 40_000 && slices.Contains(counts, 0) {
			t.Error("a rule was never exercised: the generator needs work")
		}
	})
	for i := range uint64(seqs) {
		seed := first + i
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runProperty(t, seed, steps, func(sp Spec) Spec { return sp })
		})
	}
}

// zeroStableSeeds is added to -seed for TestPropertyZeroStableFor, so that
// its sequences are not TestPropertyRandomSequences' ones.
const zeroStableSeeds = 1 << 20

// TestPropertyZeroStableFor runs the random sequences (other seeds, a fifth
// as many steps) with stable_for 0 on every service: a site is a fail-back
// target as soon as it is up and in_sync, so one service's move (which makes
// its target in_sync) can give another service a fail-back in the same
// Decide.
func TestPropertyZeroStableFor(t *testing.T) {
	first, seqs, steps := propPlan(8_000)
	first += zeroStableSeeds
	t.Logf("seeds %d..%d, %d steps each (%d steps)", first, first+uint64(seqs)-1, steps, seqs*steps)
	zero := func(sp Spec) Spec {
		for i := range sp.Services {
			sp.Services[i].Policy.StableFor = 0
		}
		return sp
	}
	for i := range uint64(seqs) {
		seed := first + i
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runProperty(t, seed, steps, zero)
		})
	}
}

// TestPropertyMinorityNeverMoves: a minority of voters reporting anything at
// all, while the majority sees every site up, never moves a service.
func TestPropertyMinorityNeverMoves(t *testing.T) {
	first, seqs := minorityPlan()
	for seed := first; seed < first+seqs; seed++ {
		minorityRun(t, seed, 300, true)
	}
}

// minorityPlan is the minority tests' seeds: 60 sequences of 300 steps by
// default (a fifth with -short or -race), or -iters steps in all.
func minorityPlan() (first, seqs uint64) {
	first, n, steps := propPlan(18_000)
	return first, uint64(max(1, n*steps/300))
}

// TestPropertyMinorityAloneNeverMoves: when only a minority of the
// configured voters is heard from at all (a cold start, the others down, or
// one side of a split), whatever it reports moves nothing and decides no
// health, through config changes too.
func TestPropertyMinorityAloneNeverMoves(t *testing.T) {
	first, seqs := minorityPlan()
	for seed := first; seed < first+seqs; seed++ {
		minorityRun(t, seed, 300, false)
	}
}

func minorityRun(t *testing.T, seed uint64, steps int, majorityHonest bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	n := 3 + r.IntN(6) // 3..8 nodes
	sp := propSpec(r, n)
	for i := range sp.Services {
		sp.Services[i].Policy = Policy{Failover: Auto, Failback: Auto}
	}
	s, err := New(sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	minority := (n - 1) / 2
	if !majorityHonest {
		minority = n / 2 // with an even count, one half of a split
	}
	g := &gen{r: r, sp: sp, now: t0, truth: map[string]bool{}}
	liars, honest := sp.Nodes[:minority], sp.Nodes[minority:]
	for i := range steps {
		g.now = g.now.Add(propSteps_[r.IntN(len(propSteps_))])
		if majorityHonest {
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
		} else if r.IntN(30) == 0 {
			// A config change that keeps the voters.
			nsp := mutateSpec(r, s.Spec())
			nsp.Nodes = sp.Nodes
			for j := range nsp.Services {
				nsp.Services[j].Policy = Policy{Failover: Auto, Failback: Auto}
			}
			if s, err = Respec(s, nsp, g.now); err != nil {
				t.Fatal(err)
			}
			g.sp = s.Spec()
		}
		for range 10 {
			liar := liars[r.IntN(len(liars))]
			switch r.IntN(4) {
			case 0:
				mustApply(t, s, g.verdictSet(liar))
			default:
				mustApply(t, s, g.observation(liar, false))
			}
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
			switch {
			case majorityHonest && (site.health != Up || (site.sync != InSync && g.sp.Sites[i].SyncCheck != "")):
				t.Fatalf("seed %d: site %s is %s/%s", seed, g.sp.Sites[i].Name, site.health, site.sync)
			case !majorityHonest && site.health != HealthUnknown:
				t.Fatalf("seed %d: a minority of %d of %d nodes made site %s %s", seed, minority, n, g.sp.Sites[i].Name, site.health)
			}
		}
	}
	for _, sv := range s.services {
		if majorityHonest && sv.epoch != 0 {
			t.Fatalf("seed %d: epoch %d", seed, sv.epoch)
		}
	}
	if !majorityHonest {
		for _, e := range s.history {
			if e.Kind != KindConfig {
				t.Fatalf("seed %d: a minority alone made %+v", seed, e)
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
