package failover

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// EntryKind says what made a history entry.
type EntryKind string

// History entry kinds.
const (
	KindDecisionEntry EntryKind = "decision" // an automatic decision, proposed by the leader
	KindCommandEntry  EntryKind = "command"  // an operator command
	KindConfig        EntryKind = "config"   // a configuration change (Respec)
)

// Entry is one history record: a decision, a command or a configuration
// change. A route move has Service, Route, From and To site names and the
// service's new Epoch; a site command has Site, From and To states.
type Entry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    EntryKind `json:"kind"`
	What    string    `json:"what"`
	Actor   string    `json:"actor,omitempty"`
	Service string    `json:"service,omitempty"`
	Route   string    `json:"route,omitempty"`
	Site    string    `json:"site,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Note    string    `json:"note,omitempty"`
	Epoch   uint64    `json:"epoch,omitempty"`
	Forced  bool      `json:"forced,omitempty"`
}

// Result says what an applied event did.
type Result struct {
	// Ignored is why the event had no effect (a stale decision, an unknown
	// optional kind), or what part of it was skipped (a VerdictSet's
	// elements naming what the spec does not have), or empty.
	Ignored string
	// Routing is true when an answer changed (an active site or an
	// endpoint's health): the nameserver's data must be rebuilt.
	Routing bool
	// Entries are the history entries the event added, oldest first.
	Entries []Entry
	// ClockClamped is not nil when the event's time was more than
	// Spec.MaxClockStep ahead of the state's clock (or past year 9999): the
	// event was applied at the state's time plus MaxClockStep instead. The
	// event did take effect; the caller should log this error (its clock, or
	// the leader's, is wrong).
	ClockClamped *ClockError
}

// ErrClockStep is wrapped by ClockError.
var ErrClockStep = errors.New("clock step too large")

// ClockError says that an event (or Respec) was stamped further ahead of the
// state's clock than Spec.MaxClockStep allows, and at what time it was
// applied instead. It wraps ErrClockStep.
type ClockError struct {
	Stamped time.Time     // the event's time
	State   time.Time     // the state's time before the event
	Applied time.Time     // the time the event was applied at
	Max     time.Duration // Spec.MaxClockStep
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("event stamped %s is %s ahead of the state's clock %s (max_clock_step %s): applied at %s",
		e.Stamped.Format(time.RFC3339Nano), e.Stamped.Sub(e.State), e.State.Format(time.RFC3339Nano), e.Max,
		e.Applied.Format(time.RFC3339Nano))
}

// Unwrap returns ErrClockStep.
func (e *ClockError) Unwrap() error { return ErrClockStep }

// stepTime is the time an event stamped t is applied at: t in UTC, but not
// before the state's time, nor more than MaxClockStep after it, nor past the
// last encodable time.
func (s *State) stepTime(t time.Time) (time.Time, *ClockError) {
	t = t.UTC()
	if !t.After(s.now) {
		return s.now, nil
	}
	limit := s.now.Add(s.spec.MaxClockStep)
	if limit.After(maxTime) {
		limit = maxTime
	}
	if !t.After(limit) {
		return t, nil
	}
	if !limit.After(s.now) {
		limit = s.now
	}
	return limit, &ClockError{Stamped: t, State: s.now, Applied: limit, Max: s.spec.MaxClockStep}
}

// Apply applies e to s, which it mutates (s is owned by its one writer; see
// State). Time: the event's time, in UTC, or s.Now() if that is later (a new
// leader's clock may lag), and at most s.Now() + Spec.MaxClockStep (else
// Result.ClockClamped says so), becomes the state's time; then the event
// takes effect and health, sync and conditions are recomputed at that time.
// AnswersVersion increments when the event changed what Answers returns.
//
// A malformed event (unknown node, site, service, bad command syntax)
// returns an error wrapping ErrInvalid and changes nothing. A command that a
// guard refuses returns a *CommandError wrapping ErrRefused and acts as a
// Tick. A stale or no longer valid Decision and an Unknown event are
// ignored: no error, Result.Ignored says why.
func Apply(s *State, e Event) (Result, error) {
	if s == nil || e == nil {
		return Result{}, fmt.Errorf("apply: nil state or event: %w", ErrInvalid)
	}
	if u, ok := e.(Unknown); ok {
		return Result{Ignored: fmt.Sprintf("unknown optional event kind 0x%02x", byte(u.K))}, nil
	}
	if err := s.validate(e); err != nil {
		return Result{}, err
	}
	s.keyBefore = s.answersKey(s.keyBefore[:0])
	var res Result
	t, clamped := s.stepTime(e.EventTime())
	res.ClockClamped = clamped
	err := s.apply(e, t, &res)
	if s.refresh(t) {
		res.Routing = true
	}
	s.keyAfter = s.answersKey(s.keyAfter[:0])
	if !bytes.Equal(s.keyBefore, s.keyAfter) {
		s.answers++
	}
	return res, err
}

// apply makes a validated event take effect at t.
func (s *State) apply(e Event, t time.Time, res *Result) error {
	switch e := e.(type) {
	case Observation:
		n, si := s.nodeIdx[e.Node], s.siteIdx[e.Site]
		s.setCheckVote(n, si, e, t)
		s.nodes[n].lastSeen = t
	case SyncVerdict:
		n, si := s.nodeIdx[e.Node], s.siteIdx[e.Site]
		s.sites[si].setSyncVote(n, e.InSync, e.Reason, t)
		s.nodes[n].lastSeen = t
	case VerdictSet:
		s.applyVerdictSet(e, t, res)
	case Beat:
		n := &s.nodes[s.nodeIdx[e.Node]]
		n.lastSeen, n.clock, n.digest, n.verdicts = t, e.Clock.UTC(), e.Digest, e.Verdicts
	case Tick:
	case Command:
		res.Routing = s.refresh(t)
		return s.applyCommand(e, res)
	case Decision:
		res.Routing = s.refresh(t)
		s.applyDecision(e, res)
	}
	return nil
}

// setCheckVote records node n's verdict o on one check of site si at t.
func (s *State) setCheckVote(n, si int, o Observation, t time.Time) {
	st := &s.sites[si]
	ep := &st.wide
	if o.Endpoint != "" {
		ep = &st.eps[st.epIdx[o.Endpoint]]
	}
	vs := ep.votes[n]
	v := checkVote{check: o.Check, up: o.Up, reason: o.Reason, time: t}
	if i, found := slices.BinarySearchFunc(vs, o.Check, func(a checkVote, c string) int { return strings.Compare(a.check, c) }); found {
		vs[i] = v
	} else {
		ep.votes[n] = slices.Insert(vs, i, v)
	}
}

// applyVerdictSet replaces node v.Node's verdicts (see VerdictSet): its
// check votes, then, after health and the sync rules are evaluated, its sync
// votes.
func (s *State) applyVerdictSet(v VerdictSet, t time.Time, res *Result) {
	n := s.nodeIdx[v.Node]
	s.nodes[n].lastSeen = t
	obs, sync, skipped := s.knownVerdicts(v.Observations, v.Sync)
	for i := range s.sites {
		st := &s.sites[i]
		st.wide.votes[n] = st.wide.votes[n][:0]
		for j := range st.eps {
			st.eps[j].votes[n] = st.eps[j].votes[n][:0]
		}
	}
	for _, o := range obs {
		s.setCheckVote(n, s.siteIdx[o.Site], o, t)
	}
	if s.refresh(t) {
		res.Routing = true
	}
	// A site the set gives no sync verdict on loses node n's vote (and so
	// its attestation); one it gives a verdict on gets it as SyncVerdict
	// would.
	given := make([]bool, len(s.sites))
	for _, sv := range sync {
		si := s.siteIdx[sv.Site]
		given[si] = true
		s.sites[si].setSyncVote(n, sv.InSync, sv.Reason, t)
	}
	for i := range s.sites {
		if !given[i] {
			s.sites[i].syncVotes[n] = syncVote{}
		}
	}
	if len(skipped) > 0 {
		res.Ignored = "verdicts on what the spec does not have: " + strings.Join(skipped, ", ")
	}
}

// KnownVerdicts returns the elements of a verdict set that s's spec knows
// (site, endpoint and sync check names), in their order: what a VerdictSet
// with them would hold, and so what a node should digest to compare with
// NodeVerdictsDigest while its config differs from the cluster's.
func (s *State) KnownVerdicts(obs []Observation, sync []SyncVerdict) ([]Observation, []SyncVerdict) {
	o, sv, _ := s.knownVerdicts(obs, sync)
	return o, sv
}

func (s *State) knownVerdicts(obs []Observation, sync []SyncVerdict) ([]Observation, []SyncVerdict, []string) {
	var skipped []string
	var ko []Observation
	for _, o := range obs {
		si, ok := s.siteIdx[o.Site]
		if !ok {
			skipped = append(skipped, fmt.Sprintf("unknown site %q", o.Site))
			continue
		}
		if _, ok := s.sites[si].epIdx[o.Endpoint]; o.Endpoint != "" && !ok {
			skipped = append(skipped, fmt.Sprintf("site %s has no endpoint %q", o.Site, o.Endpoint))
			continue
		}
		ko = append(ko, o)
	}
	var ks []SyncVerdict
	for _, v := range sync {
		si, ok := s.siteIdx[v.Site]
		if !ok {
			skipped = append(skipped, fmt.Sprintf("unknown site %q", v.Site))
			continue
		}
		if want := s.spec.Sites[si].SyncCheck; want == "" || v.Check != want {
			skipped = append(skipped, fmt.Sprintf("site %s has no sync check %q", v.Site, v.Check))
			continue
		}
		ks = append(ks, v)
	}
	return ko, ks, skipped
}

// answersKey appends to b what Answers depends on that can change: each
// route's active site, epoch and condition, and which endpoints of its
// active site are down.
func (s *State) answersKey(b []byte) []byte {
	for i := range s.services {
		for j := range s.services[i].routes {
			r := &s.services[i].routes[j]
			b = binary.AppendUvarint(b, uint64(r.active))
			b = binary.AppendUvarint(b, r.epoch)
			b = append(b, r.cond...)
			b = append(b, 0)
			for _, e := range s.sites[r.active].eps {
				if e.health == Down {
					b = append(b, 1)
				} else {
					b = append(b, 0)
				}
			}
		}
	}
	return b
}

// validate checks an event's syntax and names against the spec.
func (s *State) validate(e Event) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("apply %T: %s: %w", e, fmt.Sprintf(format, args...), ErrInvalid)
	}
	node := func(n string) error {
		if _, ok := s.nodeIdx[n]; !ok {
			return bad("unknown node %q", n)
		}
		return nil
	}
	switch e := e.(type) {
	case Observation:
		if err := node(e.Node); err != nil {
			return err
		}
		return s.validateObservation(e, bad)
	case VerdictSet:
		if err := node(e.Node); err != nil {
			return err
		}
		type key struct{ site, endpoint, check string }
		seen := map[key]bool{}
		for i, o := range e.Observations {
			if o.Node != "" && o.Node != e.Node {
				return bad("observations[%d]: node %q in a verdict set of node %q", i, o.Node, e.Node)
			}
			if o.Check == "" {
				return bad("observations[%d]: empty check", i)
			}
			k := key{o.Site, o.Endpoint, o.Check}
			if seen[k] {
				return bad("observations[%d]: a second verdict on site %q endpoint %q check %q", i, o.Site, o.Endpoint, o.Check)
			}
			seen[k] = true
		}
		sites := map[string]bool{}
		for i, v := range e.Sync {
			if v.Node != "" && v.Node != e.Node {
				return bad("sync[%d]: node %q in a verdict set of node %q", i, v.Node, e.Node)
			}
			if sites[v.Site] {
				return bad("sync[%d]: a second sync verdict on site %q", i, v.Site)
			}
			sites[v.Site] = true
		}
	case SyncVerdict:
		if err := node(e.Node); err != nil {
			return err
		}
		si, ok := s.siteIdx[e.Site]
		if !ok {
			return bad("unknown site %q", e.Site)
		}
		if want := s.spec.Sites[si].SyncCheck; want == "" || e.Check != want {
			return bad("site %s has no sync check %q", e.Site, e.Check)
		}
	case Beat:
		if !e.Clock.IsZero() && !encodable(e.Clock) {
			return bad("clock %s out of range (years 0..9999)", e.Clock)
		}
		return node(e.Node)
	case Tick:
	case Command:
		return s.checkSyntax(e)
	case Decision:
		si, ok := s.svcIdx[e.Service]
		if !ok {
			return bad("unknown service %q", e.Service)
		}
		if len(e.Moves) == 0 {
			return bad("no moves")
		}
		seen := map[string]bool{}
		for _, m := range e.Moves {
			if routeIndex(s.spec.Services[si], m.Route) < 0 {
				return bad("service %s has no route %q", e.Service, m.Route)
			}
			if seen[m.Route] {
				return bad("route %s moved twice", m.Route)
			}
			seen[m.Route] = true
		}
	default:
		return bad("unsupported event")
	}
	return nil
}

func (s *State) validateObservation(e Observation, bad func(string, ...any) error) error {
	si, ok := s.siteIdx[e.Site]
	if !ok {
		return bad("unknown site %q", e.Site)
	}
	if _, ok := s.sites[si].epIdx[e.Endpoint]; e.Endpoint != "" && !ok {
		return bad("site %s has no endpoint %q", e.Site, e.Endpoint)
	}
	if e.Check == "" {
		return bad("empty check")
	}
	return nil
}

// applyDecision applies d if its epoch is the service's and each of its
// moves is what Decide proposes now; otherwise it is ignored, whole.
func (s *State) applyDecision(d Decision, res *Result) {
	si := s.svcIdx[d.Service]
	sv := &s.services[si]
	if d.Epoch != sv.epoch {
		res.Ignored = fmt.Sprintf("stale decision: epoch %d, service %s is at epoch %d", d.Epoch, d.Service, sv.epoch)
		return
	}
	if s.frozen {
		res.Ignored = "decision while frozen"
		return
	}
	if !sv.lastMove.IsZero() && s.now.Sub(sv.lastMove) < sv.policy.MinInterval {
		res.Ignored = fmt.Sprintf("decision within min_interval %s of the last change at %s", sv.policy.MinInterval, sv.lastMove.Format(time.RFC3339Nano))
		return
	}
	moves := make([]routeMove, 0, len(d.Moves))
	for _, m := range d.Moves {
		ri := routeIndex(s.spec.Services[si], m.Route)
		p, ok := s.propose(si, ri, s.now)
		if !ok || p.From != m.From || p.To != m.To || p.Kind != m.Kind {
			res.Ignored = fmt.Sprintf("decision no longer valid: route %s/%s %s %s -> %s", d.Service, m.Route, m.Kind, m.From, m.To)
			return
		}
		moves = append(moves, routeMove{si: si, ri: ri, to: s.siteIdx[m.To], what: string(m.Kind), reason: m.Reason})
	}
	actor := d.Actor
	if actor == "" {
		actor = "leader"
	}
	s.moveRoutes(moves, Entry{Kind: KindDecisionEntry, Actor: actor}, res)
}
