package failover

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Op names an operator command.
type Op string

// Operator commands.
const (
	OpPromote    Op = "promote"     // promote SITE
	OpFailover   Op = "failover"    // failover SERVICE --to SITE [--route R]
	OpDrain      Op = "drain"       // drain SITE
	OpUndrain    Op = "undrain"     // undrain SITE
	OpMode       Op = "mode"        // mode SERVICE auto|manual [--failback auto|manual]
	OpMarkSynced Op = "mark-synced" // mark-synced SITE
	OpFreeze     Op = "freeze"      // freeze
	OpThaw       Op = "thaw"        // thaw
)

// Command is an operator command. Fields that an Op does not take must be
// empty. Force (which needs a Reason) skips the state guards — health, sync,
// admin state and route coverage — never the syntax, and is recorded.
type Command struct {
	Time    time.Time `json:"time"`
	Op      Op        `json:"op"`
	Service string    `json:"service,omitempty"`
	Site    string    `json:"site,omitempty"`
	Route   string    `json:"route,omitempty"`
	// Mode is the failover mode set by OpMode.
	Mode Mode `json:"mode,omitempty"`
	// Failback is the fail-back mode set by OpMode.
	Failback Mode   `json:"failback,omitempty"`
	Force    bool   `json:"force,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Actor    string `json:"actor,omitempty"`
}

// String is the command as an operator would type it, without force and
// reason.
func (c Command) String() string {
	parts := []string{string(c.Op)}
	add := func(s ...string) {
		if s[len(s)-1] != "" {
			parts = append(parts, s...)
		}
	}
	add(c.Service)
	switch c.Op {
	case OpFailover:
		add("--to", c.Site)
	default:
		add(c.Site)
	}
	add("--route", c.Route)
	add(string(c.Mode))
	add("--failback", string(c.Failback))
	return strings.Join(parts, " ")
}

// ErrInvalid is wrapped by errors for malformed commands and events (bad
// syntax, unknown names); force never overrides them.
var ErrInvalid = errors.New("invalid")

// ErrRefused is wrapped by errors for commands that a guard refuses in the
// current state; force with a reason overrides them.
var ErrRefused = errors.New("refused")

// CommandError is the error for a rejected command.
type CommandError struct {
	Command string // as String() prints it
	Refused bool   // a state guard refused it (else: invalid)
	Msg     string
	// Route ("service/route") and Site name what a drain refusal is
	// about: the route that would move to Site, not in sync, or (Site "")
	// the route that would be left without an up, undrained site. Empty
	// for other errors.
	Route, Site string
}

func (e *CommandError) Error() string {
	if e.Refused {
		return e.Command + " refused: " + e.Msg
	}
	return e.Command + ": " + e.Msg
}

// Unwrap returns ErrRefused or ErrInvalid.
func (e *CommandError) Unwrap() error {
	if e.Refused {
		return ErrRefused
	}
	return ErrInvalid
}

func invalid(c Command, format string, args ...any) error {
	return &CommandError{Command: c.String(), Msg: fmt.Sprintf(format, args...)}
}

func refused(c Command, format string, args ...any) *CommandError {
	return &CommandError{Command: c.String(), Refused: true, Msg: fmt.Sprintf(format, args...)}
}

// Check reports whether Apply would accept c in s as it stands: nil, or a
// *CommandError wrapping ErrInvalid (syntax, unknown names) or ErrRefused
// (a guard; the message names the blocking check and what it observed).
// It does not change s.
func Check(s *State, c Command) error {
	if err := s.checkSyntax(c); err != nil {
		return err
	}
	return s.guard(c)
}

func (s *State) checkSyntax(c Command) error {
	if c.Force && strings.TrimSpace(c.Reason) == "" {
		return invalid(c, "force needs a reason")
	}
	want := map[Op]string{ // which of service/site/route/mode/failback the op takes
		OpPromote: "s", OpFailover: "vsr", OpDrain: "s", OpUndrain: "s",
		OpMode: "vmf", OpMarkSynced: "s", OpFreeze: "", OpThaw: "",
	}
	fields, ok := want[c.Op]
	if !ok {
		return invalid(c, "unknown command %q", c.Op)
	}
	for _, f := range []struct {
		code byte
		name string
		set  bool
	}{{'v', "service", c.Service != ""}, {'s', "site", c.Site != ""}, {'r', "route", c.Route != ""},
		{'m', "mode", c.Mode != ""}, {'f', "failback", c.Failback != ""}} {
		if f.set && !strings.Contains(fields, string(f.code)) {
			return invalid(c, "%s takes no %s", c.Op, f.name)
		}
	}
	if strings.Contains(fields, "s") {
		if c.Site == "" {
			return invalid(c, "missing site")
		}
		if _, ok := s.siteIdx[c.Site]; !ok {
			return invalid(c, "unknown site %q", c.Site)
		}
	}
	if strings.Contains(fields, "v") {
		if c.Service == "" {
			return invalid(c, "missing service")
		}
		si, ok := s.svcIdx[c.Service]
		if !ok {
			return invalid(c, "unknown service %q", c.Service)
		}
		if c.Op == OpFailover {
			n := 0
			for _, r := range s.spec.Services[si].Routes {
				if (c.Route == "" || r.Name == c.Route) && containsStr(r.Sites, c.Site) {
					n++
				}
			}
			if c.Route != "" && routeIndex(s.spec.Services[si], c.Route) < 0 {
				return invalid(c, "service %s has no route %q", c.Service, c.Route)
			}
			if n == 0 {
				return invalid(c, "no route of service %s lists site %s", c.Service, c.Site)
			}
		}
	}
	if c.Op == OpMode {
		if c.Mode == "" && c.Failback == "" {
			return invalid(c, "missing mode")
		}
		if c.Mode != "" && !c.Mode.valid() {
			return invalid(c, "mode must be auto or manual, got %q", c.Mode)
		}
		if c.Failback != "" && !c.Failback.valid() {
			return invalid(c, "failback must be auto or manual, got %q", c.Failback)
		}
	}
	return nil
}

// guard runs the state checks of a syntactically valid command.
func (s *State) guard(c Command) error {
	switch c.Op {
	case OpPromote:
		p := s.siteIdx[c.Site]
		if len(s.promoteRoutes(p)) == 0 {
			return refused(c, "%s is not the first preference of any route, and on every route that lists it a site preferred to it is neither down nor drained (use failover --to)", c.Site)
		}
		if c.Force {
			return nil
		}
		st := &s.sites[p]
		if st.admin == Drained {
			return refused(c, "%s is drained", c.Site)
		}
		if st.health != Up {
			return refused(c, "%s", s.healthProblem(p))
		}
		if st.sync != InSync {
			return refused(c, "%s", s.syncProblem(p))
		}
	case OpFailover:
		if c.Force {
			return nil
		}
		p := s.siteIdx[c.Site]
		if s.sites[p].admin == Drained {
			return refused(c, "%s is drained", c.Site)
		}
		if s.sites[p].health == Down {
			return refused(c, "%s", s.healthProblem(p))
		}
		if s.sites[p].sync == InSync {
			return nil
		}
		// Moving away from a site that still serves needs a synced target,
		// as promote does; moving away from a down site does not.
		for _, m := range s.failoverMoves(c) {
			a := s.services[m.si].routes[m.ri].active
			if a != p && s.sites[a].health != Down && s.sites[a].admin != Drained {
				return refused(c, "%s, and %s, active on route %s/%s, is not down", s.syncProblem(p),
					s.spec.Sites[a].Name, s.spec.Services[m.si].Name, s.spec.Services[m.si].Routes[m.ri].Name)
			}
		}
	case OpDrain:
		p := s.siteIdx[c.Site]
		if c.Force || s.sites[p].admin == Drained {
			return nil
		}
		for si := range s.services {
			for ri := range s.services[si].routes {
				r := &s.services[si].routes[ri]
				if !containsInt(r.sites, p) {
					continue
				}
				if t, _ := s.target(r, p, s.services[si].policy.StableFor, s.now); r.active == p && t >= 0 && s.sites[t].sync != InSync {
					route := s.spec.Services[si].Name + "/" + s.spec.Services[si].Routes[ri].Name
					err := refused(c, "route %s would move to %s: %s", route, s.spec.Sites[t].Name, s.syncProblem(t))
					err.Route, err.Site = route, s.spec.Sites[t].Name
					return err
				}
				ok := false
				for _, i := range r.sites {
					ok = ok || (i != p && s.sites[i].health == Up && s.sites[i].admin != Drained)
				}
				if !ok {
					route := s.spec.Services[si].Name + "/" + s.spec.Services[si].Routes[ri].Name
					err := refused(c, "route %s would have no healthy undrained site", route)
					err.Route = route
					return err
				}
			}
		}
	case OpMarkSynced:
		p := s.siteIdx[c.Site]
		if c.Force {
			return nil
		}
		if s.sites[p].health == Down && s.sites[p].sync != InSync {
			return refused(c, "%s", s.healthProblem(p))
		}
		// The operator attests what the sync check cannot tell, never
		// against what a quorum of fresh nodes says it does tell.
		if s.syncBehind(p) {
			return refused(c, "%s", s.syncProblem(p))
		}
	}
	return nil
}

// failoverMoves lists the routes a failover command moves: its route, or
// every route of its service that lists its site.
func (s *State) failoverMoves(c Command) []routeMove {
	var out []routeMove
	si, p := s.svcIdx[c.Service], s.siteIdx[c.Site]
	for ri, rs := range s.spec.Services[si].Routes {
		if (c.Route == "" || rs.Name == c.Route) && containsStr(rs.Sites, c.Site) {
			out = append(out, routeMove{si: si, ri: ri, to: p})
		}
	}
	return out
}

// promoteRoutes lists the routes (service, route index pairs) where site p
// may be promoted: those where it is the first preference, or where every
// site preferred to it is down or drained.
func (s *State) promoteRoutes(p int) [][2]int {
	var out [][2]int
	for si := range s.services {
		for ri := range s.services[si].routes {
			r := &s.services[si].routes[ri]
			for _, i := range r.sites {
				if i == p {
					out = append(out, [2]int{si, ri})
					break
				}
				if s.sites[i].health != Down && s.sites[i].admin != Drained {
					break
				}
			}
		}
	}
	return out
}

// applyCommand applies a syntactically valid command at s.now (already
// refreshed).
func (s *State) applyCommand(c Command, res *Result) error {
	if err := s.guard(c); err != nil {
		return err
	}
	base := Entry{Kind: KindCommandEntry, What: string(c.Op), Actor: c.Actor, Reason: c.Reason, Forced: c.Force}
	rec := func(e Entry) { res.Entries = append(res.Entries, s.record(e)) }
	routeReason := c.Reason
	if routeReason == "" {
		routeReason = "operator: " + c.String()
	}
	switch c.Op {
	case OpPromote, OpFailover:
		p := s.siteIdx[c.Site]
		var moves []routeMove
		if c.Op == OpPromote {
			for _, sr := range s.promoteRoutes(p) {
				moves = append(moves, routeMove{si: sr[0], ri: sr[1], to: p})
			}
		} else {
			moves = s.failoverMoves(c)
		}
		for i := range moves {
			moves[i].reason = routeReason
		}
		moved := s.moveRoutes(moves, base, res)
		if !moved {
			e := base
			e.Site, e.Service, e.Route, e.To = c.Site, c.Service, c.Route, c.Site
			e.Note = "no change: already active"
			rec(e)
		}
	case OpDrain, OpUndrain:
		p := s.siteIdx[c.Site]
		st := &s.sites[p]
		want := AdminActive
		if c.Op == OpDrain {
			want = Drained
		}
		e := base
		e.Site, e.From, e.To = c.Site, string(st.admin), string(want)
		if st.admin == want {
			e.Note = "no change"
		}
		st.admin = want
		rec(e)
		if c.Op == OpDrain {
			var moves []routeMove
			for si := range s.services {
				for ri := range s.services[si].routes {
					r := &s.services[si].routes[ri]
					if r.active != p {
						continue
					}
					if t, why := s.target(r, p, s.services[si].policy.StableFor, s.now); t >= 0 {
						moves = append(moves, routeMove{si: si, ri: ri, to: t, reason: routeReason + "; " + why})
					}
				}
			}
			s.moveRoutes(moves, base, res)
		}
	case OpMode:
		si := s.svcIdx[c.Service]
		pol := &s.services[si].policy
		e := base
		e.Service = c.Service
		e.From = fmt.Sprintf("failover=%s failback=%s", pol.Failover, pol.Failback)
		if c.Mode != "" {
			pol.Failover = c.Mode
		}
		if c.Failback != "" {
			pol.Failback = c.Failback
		}
		e.To = fmt.Sprintf("failover=%s failback=%s", pol.Failover, pol.Failback)
		rec(e)
	case OpMarkSynced:
		st := &s.sites[s.siteIdx[c.Site]]
		e := base
		e.Site, e.From, e.To = c.Site, string(st.sync), string(InSync)
		if st.sync == InSync {
			e.Note = "no change"
		} else {
			st.sync, st.syncSince = InSync, s.now
		}
		if c.Force {
			// The operator overrides what the nodes hold: each node's
			// current verdict stays (shown, digested) but no longer
			// counts; only a different verdict from that node, or one
			// from a node that held none, does.
			for n := range st.syncVotes {
				st.syncVotes[n].attested = st.syncVotes[n].set
			}
		} else {
			// Unforced, the check could not tell (no quorum says not in
			// sync): only verdicts given after the attestation count.
			clear(st.syncVotes)
		}
		rec(e)
	case OpFreeze, OpThaw:
		e := base
		e.From, e.To = "thawed", "frozen"
		if c.Op == OpThaw {
			e.From, e.To = e.To, e.From
		}
		if s.frozen == (c.Op == OpFreeze) {
			e.From, e.Note = e.To, "no change" // it already was
		}
		s.frozen = c.Op == OpFreeze
		rec(e)
	}
	return nil
}

type routeMove struct {
	si, ri, to int
	what       string // history What; empty: the base entry's
	reason     string // the route's new reason
}

// moveRoutes makes each move's site active on its route (unless it already
// is), bumping each service's epoch once (moves are grouped by service), and
// records each move. It reports whether anything moved.
func (s *State) moveRoutes(moves []routeMove, base Entry, res *Result) bool {
	moved := false
	bumped := -1
	for _, m := range moves {
		sv := &s.services[m.si]
		r := &sv.routes[m.ri]
		if r.active == m.to {
			continue
		}
		if bumped != m.si {
			sv.epoch++
			sv.lastMove = s.now
			bumped = m.si
		}
		from := r.active
		r.active, r.epoch, r.since, r.reason = m.to, sv.epoch, s.now, m.reason
		e := base
		if m.what != "" {
			e.What = m.what
		}
		if e.Reason == "" {
			e.Reason = m.reason
		}
		e.Service, e.Route = s.spec.Services[m.si].Name, s.spec.Services[m.si].Routes[m.ri].Name
		e.From, e.To, e.Epoch = s.spec.Sites[from].Name, s.spec.Sites[m.to].Name, sv.epoch
		res.Entries = append(res.Entries, s.record(e))
		res.Routing = true
		moved = true
	}
	return moved
}

// healthProblem says why site p is not up, naming a blocking check and the
// reason a node gave.
func (s *State) healthProblem(p int) string {
	st, name := &s.sites[p], s.spec.Sites[p].Name
	if st.health == HealthUnknown {
		return fmt.Sprintf("%s health is unknown (no quorum of %d among %d fresh nodes)", name, s.quorum, s.fresh)
	}
	if st.health == Up {
		return name + " is up"
	}
	if st.wide.health == Down {
		if v, ok := s.latestDown(&st.wide); ok {
			return fmt.Sprintf("%s is down: health check %q reports down (%s)", name, v.check, v.reason)
		}
	}
	for j := range st.eps {
		if v, ok := s.latestDown(&st.eps[j]); ok {
			return fmt.Sprintf("%s is down: health check %q on %s reports down (%s)", name, v.check, s.spec.Sites[p].Endpoints[j].Name, v.reason)
		}
	}
	return name + " is down"
}

// latestDown is the most recent down check vote of a fresh node (ties: the
// lowest node, then check, name).
func (s *State) latestDown(e *endpoint) (checkVote, bool) {
	var best checkVote
	found := false
	for i, vs := range e.votes {
		if !s.nodes[i].fresh {
			continue
		}
		for _, v := range vs {
			if !v.up && (!found || v.time.After(best.time)) {
				best, found = v, true
			}
		}
	}
	return best, found
}

// syncProblem says why site p is not in_sync, naming its sync check and the
// latest reason a node gave.
func (s *State) syncProblem(p int) string {
	st, sp := &s.sites[p], &s.spec.Sites[p]
	if sp.SyncCheck == "" {
		return fmt.Sprintf("%s has no sync check and its sync state is %s (run mark-synced once its data is in sync)", sp.Name, st.sync)
	}
	var best syncVote
	found := false
	for i, v := range st.syncVotes {
		if v.set && !v.attested && !v.inSync && s.nodes[i].fresh && (!found || v.time.After(best.time)) {
			best, found = v, true
		}
	}
	if found {
		return fmt.Sprintf("sync check %q reports not_in_sync (%s)", sp.SyncCheck, best.reason)
	}
	if n := s.syncCount(st, true); n > 0 {
		return fmt.Sprintf("sync check %q reports in_sync from %d nodes, quorum %d of %d fresh nodes", sp.SyncCheck, n, s.quorum, s.fresh)
	}
	return fmt.Sprintf("sync check %q has not reported since %s became %s at %s", sp.SyncCheck, sp.Name, st.sync, st.syncSince.Format(time.RFC3339Nano))
}

func containsStr(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func routeIndex(sv ServiceSpec, name string) int {
	for i, r := range sv.Routes {
		if r.Name == name {
			return i
		}
	}
	return -1
}
