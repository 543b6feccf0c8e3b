package failover

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Health is the cluster's verdict on an endpoint or a site.
type Health string

// Health values. HealthUnknown means no quorum either way (no fresh votes,
// a split, or no observation yet); it never triggers a failover.
const (
	HealthUnknown Health = "unknown"
	Up            Health = "up"
	Down          Health = "down"
)

// Sync says whether a site's data may be trusted as primary.
type Sync string

// Sync values.
const (
	SyncUnknown Sync = "unknown"
	InSync      Sync = "in_sync"
	Resyncing   Sync = "resyncing"
)

// Admin is a site's administrative state.
type Admin string

// Admin values.
const (
	AdminActive Admin = "active"
	Drained     Admin = "drained"
)

// Condition summarises a route's situation for status and alerting.
type Condition string

// Conditions, in the order they take precedence.
const (
	// AllDown: the active site has been down for down_for and no other site
	// of the route can take over; the active site keeps answering (fail open).
	AllDown Condition = "all_down"
	// Stranded: the active site is drained (every site of the route may be)
	// and no other site of the route is up and undrained: it keeps
	// answering, and nothing can move until a site is undrained or comes up.
	Stranded Condition = "stranded"
	// AwaitingOperator: failover is manual and the active site has been down
	// for down_for (or is drained) while another site could take over.
	AwaitingOperator Condition = "awaiting_operator"
	// Frozen: automatic decisions are stopped cluster-wide.
	Frozen Condition = "frozen"
	// FailedOver: the active site is not the route's first preference.
	FailedOver Condition = "failed_over"
	// Normal: the route's first preference is active.
	Normal Condition = "normal"
)

// State is the whole replicated failover state. It is owned by one writer
// (the FSM): Apply mutates it in place. Hand readers a Clone or a view
// (Answers, Status); those never share memory with the State.
type State struct {
	spec    Spec
	siteIdx map[string]int // immutable after construction, shared by clones
	svcIdx  map[string]int
	nodeIdx map[string]int

	now      time.Time
	frozen   bool
	seq      uint64
	answers  uint64 // AnswersVersion
	history  []Entry
	retired  map[string]uint64 // epochs of removed services, by name
	nodes    []node            // index = position in spec.Nodes
	sites    []site            // index = position in spec.Sites
	services []service         // index = position in spec.Services

	// Derived from nodes and now by refresh; not serialised.
	fresh      int
	quorum     int
	validUntil time.Time

	// Scratch for Apply's answers comparison; never shared (Clone drops it).
	keyBefore, keyAfter []byte
}

type node struct {
	lastSeen time.Time
	fresh    bool
	// From the node's last beat; shown, never used to decide.
	clock    time.Time
	digest   string
	verdicts string
}

type site struct {
	epIdx       map[string]int // immutable, shared
	admin       Admin
	health      Health
	healthSince time.Time
	eps         []endpoint // spec order
	wide        endpoint   // site-wide checks (Observation.Endpoint == "")
	sync        Sync
	syncSince   time.Time
	syncVotes   []syncVote // by node index
	exposed     bool       // down and active nowhere, as of the last refresh
	activeOn    int        // routes this site is active on; derived
}

type endpoint struct {
	health Health
	since  time.Time
	votes  [][]checkVote // by node index, each sorted by check
}

type checkVote struct {
	check  string
	up     bool
	reason string
	time   time.Time
}

type syncVote struct {
	set    bool
	inSync bool
	reason string
	time   time.Time
	// attested: the node held this verdict (inSync) when a forced
	// mark-synced attested the site; it does not count until the node
	// gives a different one. Only on a set vote of an in_sync site.
	attested bool
}

// setSyncVote records node n's sync verdict at t. A verdict equal to an
// attested one (only its reason or time differ) stays attested: re-sending
// what the node held at a forced mark-synced does not undo it.
func (st *site) setSyncVote(n int, inSync bool, reason string, t time.Time) {
	old := st.syncVotes[n]
	st.syncVotes[n] = syncVote{set: true, inSync: inSync, reason: reason, time: t,
		attested: old.set && old.attested && old.inSync == inSync}
}

type service struct {
	policy   Policy
	epoch    uint64
	lastMove time.Time
	routes   []route // spec order (sorted by name)
}

type route struct {
	sites     []int // site indices in preference order; immutable, shared
	active    int
	epoch     uint64
	since     time.Time
	reason    string
	cond      Condition
	condSince time.Time
}

// New validates spec and returns the initial state at now: every route
// served by its first site, epoch 0, every site active (not drained), health
// unknown, sync in_sync for the sites that serve a route and unknown for the
// others.
func New(spec Spec, now time.Time) (*State, error) {
	sp, err := normalize(spec)
	if err != nil {
		return nil, err
	}
	if !encodable(now) {
		return nil, fmt.Errorf("new failover state: time %s out of range (years 0..9999)", now)
	}
	now = now.UTC()
	s := skeleton(sp)
	s.now = now
	for i := range s.sites {
		st := &s.sites[i]
		st.admin = AdminActive
		st.health, st.healthSince = HealthUnknown, now
		st.sync, st.syncSince = SyncUnknown, now
		for j := range st.eps {
			st.eps[j].health, st.eps[j].since = HealthUnknown, now
		}
		st.wide.health, st.wide.since = HealthUnknown, now
	}
	for i := range s.services {
		for j := range s.services[i].routes {
			r := &s.services[i].routes[j]
			r.active, r.since, r.reason = r.sites[0], now, "initial"
			r.cond, r.condSince = Normal, now
		}
	}
	s.refresh(now)
	return s, nil
}

// skeleton builds a state's structure (indices, empty vote tables) for a
// normalized spec.
func skeleton(sp Spec) *State {
	s := &State{
		spec:    sp,
		siteIdx: make(map[string]int, len(sp.Sites)),
		svcIdx:  make(map[string]int, len(sp.Services)),
		nodeIdx: make(map[string]int, len(sp.Nodes)),
		nodes:   make([]node, len(sp.Nodes)),
		sites:   make([]site, len(sp.Sites)),
	}
	for i, n := range sp.Nodes {
		s.nodeIdx[n] = i
	}
	for i, ss := range sp.Sites {
		s.siteIdx[ss.Name] = i
		st := &s.sites[i]
		st.epIdx = make(map[string]int, len(ss.Endpoints))
		st.eps = make([]endpoint, len(ss.Endpoints))
		for j, e := range ss.Endpoints {
			st.epIdx[e.Name] = j
			st.eps[j].votes = make([][]checkVote, len(sp.Nodes))
		}
		st.wide.votes = make([][]checkVote, len(sp.Nodes))
		st.syncVotes = make([]syncVote, len(sp.Nodes))
	}
	s.services = make([]service, len(sp.Services))
	for i, sv := range sp.Services {
		s.svcIdx[sv.Name] = i
		s.services[i].policy = sv.Policy
		s.services[i].routes = make([]route, len(sv.Routes))
		for j, r := range sv.Routes {
			idx := make([]int, len(r.Sites))
			for k, name := range r.Sites {
				idx[k] = s.siteIdx[name]
			}
			s.services[i].routes[j].sites = idx
		}
	}
	return s
}

// Now is the time of the last applied event (or of New).
func (s *State) Now() time.Time { return s.now }

// Frozen reports whether automatic decisions are frozen.
func (s *State) Frozen() bool { return s.frozen }

// Spec returns a copy of the state's (normalized) spec.
func (s *State) Spec() Spec { return cloneSpec(s.spec) }

// FreshNodes is how many voters were heard from within vote_ttl as of the
// last applied event (Status().FreshNodes, without building the status).
func (s *State) FreshNodes() int { return s.fresh }

// ViewValidUntil is when the applied view may next change by a vote expiring
// (zero when no node is fresh). Decide refuses to decide at or after it: apply
// a Tick first.
func (s *State) ViewValidUntil() time.Time { return s.validUntil }

// Clone returns a deep copy of s that shares no mutable memory with it.
func (s *State) Clone() *State {
	c := *s
	c.spec = s.spec // never mutated after construction
	c.history = slices.Clone(s.history)
	c.retired = maps.Clone(s.retired)
	c.keyBefore, c.keyAfter = nil, nil
	c.nodes = slices.Clone(s.nodes)
	c.sites = make([]site, len(s.sites))
	for i, st := range s.sites {
		st.eps = make([]endpoint, len(s.sites[i].eps))
		for j, e := range s.sites[i].eps {
			st.eps[j] = cloneEndpoint(e)
		}
		st.wide = cloneEndpoint(s.sites[i].wide)
		st.syncVotes = slices.Clone(s.sites[i].syncVotes)
		c.sites[i] = st
	}
	c.services = make([]service, len(s.services))
	for i, sv := range s.services {
		sv.routes = slices.Clone(sv.routes)
		c.services[i] = sv
	}
	return &c
}

func cloneEndpoint(e endpoint) endpoint {
	votes := make([][]checkVote, len(e.votes))
	for i, v := range e.votes {
		votes[i] = slices.Clone(v)
	}
	e.votes = votes
	return e
}

// refresh recomputes everything derived from votes and time at t: node
// freshness, quorum, endpoint and site health (recording when each changed),
// the sync rules and route conditions. It reports whether an answer changed.
func (s *State) refresh(t time.Time) (routing bool) {
	s.now = t
	s.deriveNodes()
	for i := range s.sites {
		st := &s.sites[i]
		allDown, anyUp := true, false
		for j := range st.eps {
			e := &st.eps[j]
			if h := s.judge(e); h != e.health {
				// Answers leave out down endpoints only.
				routing = routing || (h == Down) != (e.health == Down)
				e.health, e.since = h, t
			}
			allDown = allDown && e.health == Down
			anyUp = anyUp || e.health == Up
		}
		if h := s.judge(&st.wide); h != st.wide.health {
			st.wide.health, st.wide.since = h, t
		}
		h := HealthUnknown
		switch {
		case st.wide.health == Down || allDown:
			h = Down
		case anyUp:
			h = Up
		}
		if h != st.health {
			st.health, st.healthSince = h, t
		}
	}
	s.countActive()
	for i := range s.sites {
		st, sp := &s.sites[i], &s.spec.Sites[i]
		exposed := st.health == Down && st.activeOn == 0
		switch {
		case st.activeOn > 0:
			// A site that serves is the source of truth.
			if st.sync != InSync {
				st.sync, st.syncSince = InSync, t
			}
		case exposed && !st.exposed:
			st.loseSync(t)
		case st.sync == InSync && s.syncBehind(i):
			st.loseSync(t)
		case st.sync != InSync && st.health == Up && s.syncEvidence(st, sp):
			st.sync, st.syncSince = InSync, t
		}
		st.exposed = exposed
	}
	for i := range s.services {
		for j := range s.services[i].routes {
			r := &s.services[i].routes[j]
			if c := s.condition(i, r, t); c != r.cond {
				r.cond, r.condSince = c, t
			}
		}
	}
	return routing
}

// deriveNodes computes node freshness, the quorum and validUntil at s.now.
func (s *State) deriveNodes() {
	ttl := s.spec.VoteTTL
	s.fresh, s.validUntil = 0, time.Time{}
	for i := range s.nodes {
		n := &s.nodes[i]
		n.fresh = !n.lastSeen.IsZero() && s.now.Sub(n.lastSeen) < ttl
		if n.fresh {
			s.fresh++
			if exp := n.lastSeen.Add(ttl); s.validUntil.IsZero() || exp.Before(s.validUntil) {
				s.validUntil = exp
			}
		}
	}
	s.quorum = max(s.spec.baseQuorum(), s.fresh/2+1)
}

// countActive counts, per site, the routes it is active on.
func (s *State) countActive() {
	for i := range s.sites {
		s.sites[i].activeOn = 0
	}
	for i := range s.services {
		for j := range s.services[i].routes {
			s.sites[s.services[i].routes[j].active].activeOn++
		}
	}
}

// loseSync makes a site resyncing from t and forgets its sync verdicts: only
// verdicts given after this moment can bring it back in sync.
func (st *site) loseSync(t time.Time) {
	st.sync, st.syncSince = Resyncing, t
	clear(st.syncVotes)
}

func (s *State) syncCount(st *site, inSync bool) int {
	n := 0
	for i, v := range st.syncVotes {
		if v.set && !v.attested && v.inSync == inSync && s.nodes[i].fresh {
			n++
		}
	}
	return n
}

// syncBehind reports whether site p has a sync check that a quorum of
// fresh nodes reports not in sync.
func (s *State) syncBehind(p int) bool {
	return s.spec.Sites[p].SyncCheck != "" && s.fresh > 0 && s.syncCount(&s.sites[p], false) >= s.quorum
}

func (s *State) syncEvidence(st *site, sp *SiteSpec) bool {
	if sp.SyncCheck == "" {
		return s.spec.TrustHealthWithoutSync
	}
	return s.fresh > 0 && s.syncCount(st, true) >= s.quorum
}

// verdict is one node's verdict on an endpoint: down if any of its checks is
// down, up if it has at least one check and all are up.
func verdict(cv []checkVote) Health {
	if len(cv) == 0 {
		return HealthUnknown
	}
	for _, c := range cv {
		if !c.up {
			return Down
		}
	}
	return Up
}

func (s *State) tally(e *endpoint) (up, down int) {
	for i, v := range e.votes {
		if !s.nodes[i].fresh {
			continue
		}
		switch verdict(v) {
		case Up:
			up++
		case Down:
			down++
		}
	}
	return up, down
}

func (s *State) judge(e *endpoint) Health {
	if s.fresh == 0 {
		return HealthUnknown
	}
	up, down := s.tally(e)
	switch {
	case down >= s.quorum:
		return Down
	case up >= s.quorum:
		return Up
	}
	return HealthUnknown
}

// condition derives a route's condition at t.
func (s *State) condition(si int, r *route, t time.Time) Condition {
	a := &s.sites[r.active]
	pol := &s.services[si].policy
	downLong := a.health == Down && t.Sub(a.healthSince) >= pol.DownFor
	hasTarget := s.canTakeOver(r, r.active)
	switch {
	case downLong && !hasTarget:
		return AllDown
	case a.admin == Drained && !hasTarget:
		return Stranded
	case (downLong || a.admin == Drained) && hasTarget && pol.Failover == Manual:
		return AwaitingOperator
	case s.frozen:
		return Frozen
	case r.active != r.sites[0]:
		return FailedOver
	}
	return Normal
}

// canTakeOver reports whether a site of the route other than exclude is up
// and not drained.
func (s *State) canTakeOver(r *route, exclude int) bool {
	for _, i := range r.sites {
		if st := &s.sites[i]; i != exclude && st.health == Up && st.admin != Drained {
			return true
		}
	}
	return false
}

// stableSince is when site st became both up and in_sync (the later of the
// two); meaningful only while it is both.
func (st *site) stableSince() time.Time {
	if st.syncSince.After(st.healthSince) {
		return st.syncSince
	}
	return st.healthSince
}

// target is the site a route moves to away from exclude at now, as Decide
// chooses it, and why, in words for the move's reason. Among the sites that
// are up, not drained and in_sync it takes the first in route order that has
// been both up and in_sync for stableFor, else the first of them; failing
// that, the first site that is up and not drained (not in sync: a failover
// away from a down site takes it when nothing better is left); -1 if none.
func (s *State) target(r *route, exclude int, stableFor time.Duration, now time.Time) (int, string) {
	synced, fallback := -1, -1
	for _, i := range r.sites {
		st := &s.sites[i]
		if i == exclude || st.health != Up || st.admin == Drained {
			continue
		}
		if st.sync != InSync {
			if fallback < 0 {
				fallback = i
			}
			continue
		}
		if d := now.Sub(st.stableSince()); d >= stableFor {
			return i, fmt.Sprintf("%s stable: up and in_sync for %s (stable_for %s)", s.spec.Sites[i].Name, d, stableFor)
		}
		if synced < 0 {
			synced = i
		}
	}
	if synced >= 0 {
		return synced, fmt.Sprintf("no site stable for %s: %s up and in_sync for %s only", stableFor,
			s.spec.Sites[synced].Name, now.Sub(s.sites[synced].stableSince()))
	}
	if fallback >= 0 {
		return fallback, fmt.Sprintf("no site up and in_sync: %s up but %s", s.spec.Sites[fallback].Name, s.sites[fallback].sync)
	}
	return -1, ""
}

// record appends a history entry stamped with the state's time and next
// sequence number, dropping the oldest beyond the limit.
func (s *State) record(e Entry) Entry {
	s.seq++
	e.Seq, e.Time = s.seq, s.now
	s.history = append(s.history, e)
	if over := len(s.history) - s.spec.HistoryLimit; over > 0 {
		n := copy(s.history, s.history[over:])
		clear(s.history[n:])
		s.history = s.history[:n]
	}
	return e
}
