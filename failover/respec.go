package failover

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Respec returns a new state for spec at now (or at s.Now() if later, and at
// most s.Now() + MaxClockStep), keeping what is still meaningful from s.
// s is not changed. The rule (DESIGN.md §3.3): a spec change never makes a
// site active that Decide or an unforced command could not make active at
// that moment — no path around resync. In detail:
//
//   - Kept, by name: node liveness and beat fields; votes for nodes,
//     sites and endpoints (by endpoint name) that still exist; each site's
//     admin and sync state (sync votes only while its sync check keeps its
//     name); each service's epoch and last change, and its operator-set
//     modes while its spec policy is unchanged; each route's state (active
//     site, epoch, since, reason, condition) while the route still lists
//     its active site; the freeze flag, the history and AnswersVersion.
//   - A renamed route keeps its state: a new route name of a kept service
//     takes over the state of a route of that service whose name is gone
//     and whose site list was exactly the same (same sites, same order; the
//     first such route in name order), except that its epoch becomes the
//     service's (so no route name's epoch ever goes down). A history entry
//     says so. Any other change to a renamed route makes it a new route.
//   - A route whose active site is no longer in it moves as a decision
//     would: to the site Decide's failover would pick among its sites that
//     are up, undrained and in_sync (the stable ones first). Failing that:
//     before any node has reported, to its first undrained site (nothing is
//     known yet); else as a failover falls back, to the first site that is
//     up and undrained though not in sync; else (no site is up: whatever it
//     takes answers fail-open) to the first undrained site that is in_sync,
//     else to the first undrained one that is not resyncing, else to the
//     first undrained one, else to the first. The service's epoch is
//     incremented (once per service) and the move is recorded.
//   - A new route (or every route of a new service) starts on its first
//     preference when that site is up, undrained and in_sync, or before any
//     node has reported (a cold start: nothing is known yet). Otherwise it
//     starts where a move (previous item) would go, with a history entry
//     saying why. Its epoch is the service's (no move happened).
//   - A service that is removed leaves its epoch behind: if a service of
//     that name is added again it continues from it, so that epochs never go
//     down. A renamed service is a new service. A site that is removed is
//     forgotten: added again (or renamed) it is a new site, of unknown
//     health and sync, which needs its sync check (or mark-synced) to be
//     in_sync, as a resyncing site does, before Decide or promote will
//     make it active.
//
// Health and sync are taken as a Tick at now would leave them in s, so a
// vote that expired by now no longer counts. AnswersVersion increments when
// the new state's Answers differ from s's.
func Respec(s *State, spec Spec, now time.Time) (*State, error) {
	sp, err := normalize(spec)
	if err != nil {
		return nil, err
	}
	if !encodable(now) {
		return nil, fmt.Errorf("respec: time %s out of range (years 0..9999)", now)
	}
	now, _ = s.stepTime(now)
	o := s.Clone()
	o.refresh(now)

	n := skeleton(sp)
	n.now, n.frozen, n.seq, n.answers = now, o.frozen, o.seq, o.answers
	n.history, n.retired = o.history, maps.Clone(o.retired)
	if what := specChanges(o.spec, sp); what != "" {
		n.record(Entry{Kind: KindConfig, What: "respec", Actor: "config", Reason: what})
	}
	nodeMap := make([]int, len(sp.Nodes)) // new index -> old index or -1
	for i, name := range sp.Nodes {
		old, ok := o.nodeIdx[name]
		nodeMap[i] = -1
		if ok {
			nodeMap[i] = old
			n.nodes[i] = o.nodes[old]
		}
	}
	copyVotes := func(dst, src *endpoint) {
		dst.health, dst.since = src.health, src.since
		for i, old := range nodeMap {
			if old >= 0 {
				dst.votes[i] = slices.Clone(src.votes[old])
			}
		}
	}
	for i, ss := range sp.Sites {
		st := &n.sites[i]
		st.admin = AdminActive
		st.health, st.healthSince = HealthUnknown, now
		st.sync, st.syncSince = SyncUnknown, now
		st.wide.health, st.wide.since = HealthUnknown, now
		for j := range st.eps {
			st.eps[j].health, st.eps[j].since = HealthUnknown, now
		}
		oi, ok := o.siteIdx[ss.Name]
		if !ok {
			continue
		}
		os, oss := &o.sites[oi], o.spec.Sites[oi]
		st.admin, st.health, st.healthSince = os.admin, os.health, os.healthSince
		st.sync, st.syncSince, st.exposed = os.sync, os.syncSince, os.exposed
		copyVotes(&st.wide, &os.wide)
		for j, e := range ss.Endpoints {
			if oj, ok := os.epIdx[e.Name]; ok {
				copyVotes(&st.eps[j], &os.eps[oj])
			}
		}
		if oss.SyncCheck == ss.SyncCheck {
			for k, old := range nodeMap {
				if old >= 0 {
					st.syncVotes[k] = os.syncVotes[old]
				}
			}
		}
	}

	for i, svs := range sp.Services {
		sv := &n.services[i]
		oi, kept := o.svcIdx[svs.Name]
		var osv *service
		var ospec ServiceSpec
		if kept {
			osv, ospec = &o.services[oi], o.spec.Services[oi]
			sv.epoch, sv.lastMove = osv.epoch, osv.lastMove
			if ospec.Policy == svs.Policy {
				sv.policy = osv.policy
			}
		} else if e, ok := n.retired[svs.Name]; ok {
			sv.epoch = e
			delete(n.retired, svs.Name)
		}
		match := matchRoutes(ospec, svs)
		bumped := false
		for j, rs := range svs.Routes {
			r := &sv.routes[j]
			r.cond, r.condSince = Normal, now
			entry := Entry{Kind: KindConfig, What: "respec", Actor: "config", Service: svs.Name, Route: rs.Name}
			if oj := match[j]; oj >= 0 {
				or := &osv.routes[oj]
				activeName := o.spec.Sites[or.active].Name
				if oldName := ospec.Routes[oj].Name; oldName != rs.Name {
					e := entry
					e.Note = fmt.Sprintf("route %s renamed to %s: it keeps its state", oldName, rs.Name)
					n.record(e)
				}
				if slices.Contains(rs.Sites, activeName) {
					r.active, r.epoch, r.since, r.reason = n.siteIdx[activeName], or.epoch, or.since, or.reason
					if oldName := ospec.Routes[oj].Name; oldName != rs.Name {
						r.epoch = sv.epoch // the name may have had a later epoch once
					}
					r.cond, r.condSince = or.cond, or.condSince
					continue
				}
				to, why := n.place(r, sv.policy.StableFor, now, false)
				if !bumped {
					sv.epoch++
					sv.lastMove = now
					bumped = true
				}
				r.active, r.epoch, r.since = to, sv.epoch, now
				r.reason = fmt.Sprintf("configuration changed: %s no longer in route; %s", activeName, why)
				entry.From, entry.To, entry.Reason, entry.Epoch = activeName, sp.Sites[to].Name, r.reason, sv.epoch
				n.record(entry)
				continue
			}
			to, why := n.place(r, sv.policy.StableFor, now, true)
			r.active, r.epoch, r.since, r.reason = to, sv.epoch, now, "initial"
			if to != r.sites[0] {
				r.reason = fmt.Sprintf("configuration changed: new route, %s cannot start it; %s", sp.Sites[r.sites[0]].Name, why)
				entry.To, entry.Reason, entry.Epoch, entry.Note = sp.Sites[to].Name, r.reason, sv.epoch, "new route"
				n.record(entry)
			}
		}
	}
	for i, svs := range o.spec.Services {
		if _, ok := n.svcIdx[svs.Name]; !ok && o.services[i].epoch > 0 {
			if n.retired == nil {
				n.retired = map[string]uint64{}
			}
			n.retired[svs.Name] = o.services[i].epoch
		}
	}
	n.refresh(now)
	if !answersEqual(s.Answers(), n.Answers()) {
		n.answers++
	}
	return n, nil
}

// matchRoutes maps each route of nsv to the route of osv whose state it
// keeps, or -1: the route of the same name, else (a rename) the first
// unmatched old route with exactly the same site list.
func matchRoutes(osv, nsv ServiceSpec) []int {
	match := make([]int, len(nsv.Routes))
	used := make([]bool, len(osv.Routes))
	for j, rs := range nsv.Routes {
		match[j] = routeIndex(osv, rs.Name)
		if match[j] >= 0 {
			used[match[j]] = true
		}
	}
	for j, rs := range nsv.Routes {
		if match[j] >= 0 {
			continue
		}
		for oj, ors := range osv.Routes {
			if !used[oj] && slices.Equal(ors.Sites, rs.Sites) {
				match[j], used[oj] = oj, true
				break
			}
		}
	}
	return match
}

// place is the site a route of n starts on (fresh: a new route) or moves to
// (its active site left it), and why; see Respec. It reads node liveness,
// health, sync and admin state only.
func (n *State) place(r *route, stableFor time.Duration, now time.Time, fresh bool) (int, string) {
	name := func(i int) string { return n.spec.Sites[i].Name }
	first := r.sites[0]
	if st := &n.sites[first]; fresh && st.health == Up && st.admin != Drained && st.sync == InSync {
		return first, ""
	}
	t, why := n.target(r, -1, stableFor, now)
	if t >= 0 && n.sites[t].sync == InSync {
		return t, why
	}
	undrained := func(ok func(st *site) bool) int {
		for _, i := range r.sites {
			if st := &n.sites[i]; st.admin != Drained && ok(st) {
				return i
			}
		}
		return -1
	}
	heard := slices.ContainsFunc(n.nodes, func(nd node) bool { return !nd.lastSeen.IsZero() })
	if i := undrained(func(*site) bool { return true }); !heard && i >= 0 {
		return i, "no node has reported yet"
	}
	if t >= 0 {
		return t, why
	}
	if i := undrained(func(st *site) bool { return st.sync == InSync }); i >= 0 {
		return i, fmt.Sprintf("no site is up: %s is in_sync (health %s)", name(i), n.sites[i].health)
	}
	if i := undrained(func(st *site) bool { return st.sync != Resyncing }); i >= 0 {
		return i, fmt.Sprintf("no site is up or in_sync: %s is not resyncing (health %s, sync %s)", name(i), n.sites[i].health, n.sites[i].sync)
	}
	if i := undrained(func(*site) bool { return true }); i >= 0 {
		return i, fmt.Sprintf("no site is up or in_sync: %s is the first undrained site", name(i))
	}
	return first, "every site is drained"
}

// answersEqual reports whether two Answers lists are the same.
func answersEqual(a, b []Answer) bool {
	return slices.EqualFunc(a, b, func(x, y Answer) bool {
		return x.Service == y.Service && x.Route == y.Route && x.Site == y.Site && x.Epoch == y.Epoch &&
			x.FailOpen == y.FailOpen && x.Condition == y.Condition && x.TTL == y.TTL && slices.Equal(x.Endpoints, y.Endpoints)
	})
}

// specChanges says in one line what differs between two normalized specs
// (sites and services added, removed or changed; voters; the rest), or ""
// when nothing does: the audit history's entry for a configuration change.
func specChanges(o, n Spec) string {
	parts := diffNamed(nil, "sites", o.Sites, n.Sites, func(x SiteSpec) string { return x.Name }, siteSpecEqual)
	parts = diffNamed(parts, "services", o.Services, n.Services, func(x ServiceSpec) string { return x.Name }, func(a, b ServiceSpec) bool {
		return a.Policy == b.Policy && a.TTL == b.TTL && slices.Equal(a.Names, b.Names) &&
			slices.EqualFunc(a.Routes, b.Routes, func(p, q RouteSpec) bool { return p.Name == q.Name && slices.Equal(p.Sites, q.Sites) })
	})
	if !slices.Equal(o.Nodes, n.Nodes) {
		parts = append(parts, fmt.Sprintf("voters: %s", strings.Join(n.Nodes, ", ")))
	}
	if o.VoteTTL != n.VoteTTL || o.MinQuorum != n.MinQuorum || o.TrustHealthWithoutSync != n.TrustHealthWithoutSync ||
		o.HistoryLimit != n.HistoryLimit || o.MaxClockStep != n.MaxClockStep {
		parts = append(parts, "cluster settings changed")
	}
	return strings.Join(parts, "; ")
}

// diffNamed appends to parts which of what (by name) n adds to o, removes
// from it, and changes (not same), in that order, each in n's or o's order.
func diffNamed[T any](parts []string, what string, o, n []T, name func(T) string, same func(a, b T) bool) []string {
	find := func(xs []T, nm string) int { return slices.IndexFunc(xs, func(x T) bool { return name(x) == nm }) }
	var add, del, chg []string
	for _, x := range n {
		if i := find(o, name(x)); i < 0 {
			add = append(add, name(x))
		} else if !same(o[i], x) {
			chg = append(chg, name(x))
		}
	}
	for _, x := range o {
		if find(n, name(x)) < 0 {
			del = append(del, name(x))
		}
	}
	for _, p := range []struct {
		verb  string
		names []string
	}{{"added", add}, {"removed", del}, {"changed", chg}} {
		if len(p.names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s: %s", what, p.verb, strings.Join(p.names, ", ")))
		}
	}
	return parts
}
