package failover

import (
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
	// optional kind), or empty.
	Ignored string
	// Routing is true when an answer changed (an active site or an
	// endpoint's health): the nameserver's data must be rebuilt.
	Routing bool
	// Entries are the history entries the event added, oldest first.
	Entries []Entry
}

// Apply applies e to s, which it mutates (s is owned by its one writer; see
// State). Time: the event's time, in UTC, or s.Now() if that is later (a new
// leader's clock may lag), becomes the state's time; then the event takes
// effect and health, sync and conditions are recomputed at that time.
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
	t := e.EventTime().UTC()
	if t.Before(s.now) {
		t = s.now
	}
	var res Result
	switch e := e.(type) {
	case Observation:
		n, si := s.nodeIdx[e.Node], s.siteIdx[e.Site]
		st := &s.sites[si]
		ep := &st.wide
		if e.Endpoint != "" {
			ep = &st.eps[st.epIdx[e.Endpoint]]
		}
		vs := ep.votes[n]
		v := checkVote{check: e.Check, up: e.Up, reason: e.Reason, time: t}
		if i, found := slices.BinarySearchFunc(vs, e.Check, func(a checkVote, c string) int { return strings.Compare(a.check, c) }); found {
			vs[i] = v
		} else {
			ep.votes[n] = slices.Insert(vs, i, v)
		}
		s.nodes[n].lastSeen = t
	case SyncVerdict:
		n, si := s.nodeIdx[e.Node], s.siteIdx[e.Site]
		s.sites[si].syncVotes[n] = syncVote{set: true, inSync: e.InSync, reason: e.Reason, time: t}
		s.nodes[n].lastSeen = t
	case Beat:
		s.nodes[s.nodeIdx[e.Node]].lastSeen = t
	case Tick:
	case Command:
		res.Routing = s.refresh(t)
		if err := s.applyCommand(e, &res); err != nil {
			return res, err
		}
	case Decision:
		res.Routing = s.refresh(t)
		s.applyDecision(e, &res)
	}
	if s.refresh(t) {
		res.Routing = true
	}
	return res, nil
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
