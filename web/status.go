package web

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

// statusOf builds the public status document from a view. st is the view's
// failover.Status (computed once by the caller). History is the last n
// entries, newest first.
func statusOf(v *View, st *failover.Status, self string, n int, now time.Time) api.Status {
	out := api.Status{
		Schema:       api.Schema,
		Node:         self,
		Leader:       v.Leader,
		Quorum:       v.Quorum,
		Halted:       v.Halted,
		GeneratedAt:  api.At(now),
		AppliedIndex: v.Index,
		Services:     []api.Service{},
		Sites:        []api.Site{},
		Nodes:        []api.Node{},
		History:      []api.HistoryEntry{},
	}
	if v.State == nil {
		return out
	}
	out.StateTime = api.At(st.Now)
	out.VoteQuorum, out.FreshNodes = st.Quorum, st.FreshNodes
	out.Frozen = st.Frozen
	out.QuorumWarning, out.AnswersVersion = st.QuorumWarning, st.AnswersVersion

	answers := map[[2]string]failover.Answer{}
	for _, a := range v.State.Answers() {
		answers[[2]string{a.Service, a.Route}] = a
	}
	for _, s := range st.Services {
		svc := api.Service{
			Name: s.Name, Names: nonNil(s.Names),
			Failover: modeOr(s.Policy.Failover, failover.Auto), Failback: modeOr(s.Policy.Failback, failover.Manual),
			TTL: api.Duration(v.TTL[s.Name]), DownFor: api.Duration(s.Policy.DownFor),
			StableFor: api.Duration(s.Policy.StableFor), MinInterval: api.Duration(s.Policy.MinInterval),
			Epoch: s.Epoch, Routes: []api.Route{},
		}
		for _, r := range s.Routes {
			a := answers[[2]string{s.Name, r.Name}]
			svc.Routes = append(svc.Routes, api.Route{
				Name: r.Name, Sites: nonNil(r.Sites), Active: r.Active,
				Condition: string(r.Condition), ConditionSince: api.At(r.ConditionSince), Detail: r.Detail,
				Epoch: r.Epoch, Since: api.At(r.Since), Reason: r.Reason,
				Answer: answerAddrs(a), FailOpen: a.FailOpen,
				Blocked: routeBlocked(st, s, r),
			})
		}
		out.Services = append(out.Services, svc)
	}
	for _, s := range st.Sites {
		site := api.Site{
			Name: s.Name, Health: string(s.Health), HealthSince: api.At(s.HealthSince),
			Sync: string(s.Sync), SyncSince: api.At(s.SyncSince), SyncCheck: s.SyncCheck,
			SyncVotes: []api.Vote{}, Admin: string(s.Admin),
			Checks: endpointOf(s.SiteChecks, ""), Endpoints: []api.Endpoint{},
		}
		for _, v := range s.SyncVotes {
			site.SyncVotes = append(site.SyncVotes, api.Vote{Node: v.Node, Up: v.InSync, Check: s.SyncCheck,
				Reason: v.Reason, Time: api.At(v.Time), Fresh: v.Fresh, Attested: v.Attested})
			site.SyncAttested = site.SyncAttested || (v.Attested && !v.InSync && s.Sync == "in_sync")
		}
		for _, e := range s.Endpoints {
			site.Endpoints = append(site.Endpoints, endpointOf(e, e.Address))
		}
		out.Sites = append(out.Sites, site)
	}
	digests := map[string]bool{}
	for _, n := range st.Nodes {
		d, clock := n.Digest, n.Clock
		out.Nodes = append(out.Nodes, api.Node{
			ID: n.Name, Fresh: n.Fresh, Leader: n.Name == v.Leader, Self: n.Name == self,
			LastSeen: api.At(n.LastSeen), Clock: api.At(clock),
			AppliedIndex: v.Applied[n.Name], ConfigDigest: d,
		})
		if n.Fresh && d != "" {
			digests[d] = true
		}
	}
	out.ConfigMismatch = len(digests) > 1
	h := st.History
	for i := len(h) - 1; i >= 0 && len(out.History) < n; i-- {
		out.History = append(out.History, entryOf(h[i]))
	}
	return out
}

func endpointOf(e failover.EndpointStatus, addr string) api.Endpoint {
	out := api.Endpoint{Name: e.Name, Address: addr, Health: string(e.Health), Since: api.At(e.Since),
		Votes: api.Votes{Up: e.Up, Down: e.Down}, Voters: []api.Vote{}}
	for _, v := range e.Votes {
		out.Voters = append(out.Voters, api.Vote{Node: v.Node, Up: v.Up, Check: v.Check, Reason: v.Reason,
			Time: api.At(v.Time), Fresh: v.Fresh})
	}
	return out
}

func entryOf(e failover.Entry) api.HistoryEntry {
	return api.HistoryEntry{Seq: e.Seq, Time: api.At(e.Time), Kind: string(e.Kind), What: e.What, Actor: e.Actor,
		Service: e.Service, Route: e.Route, Site: e.Site, From: e.From, To: e.To, Reason: e.Reason,
		Note: e.Note, Epoch: e.Epoch, Forced: e.Forced}
}

func modeOr(m, def failover.Mode) string {
	if m == "" {
		return string(def)
	}
	return string(m)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// siteBlocker says what keeps site from being made active by promote or an
// automatic fail-back, checked in the guard's order: admin state, health,
// sync. ok is false when nothing blocks it.
func siteBlocker(st *failover.Status, site string) (b api.Blocker, ok bool) {
	i := slices.IndexFunc(st.Sites, func(s failover.SiteStatus) bool { return s.Name == site })
	if i < 0 {
		return api.Blocker{}, false
	}
	s := &st.Sites[i]
	b.Site = site
	if s.Admin == failover.Drained {
		b.Check, b.Observed = "admin", "drained"
		return b, true
	}
	if hb, bad := healthBlocker(st, s); bad {
		hb.Site = site
		return hb, true
	}
	if s.Sync != failover.InSync {
		b.Check, b.Observed = syncBlocker(s)
		return b, true
	}
	return api.Blocker{}, false
}

// healthBlocker names the check behind a site that is not up: the most
// recent fresh down vote, or the vote count when health is unknown.
func healthBlocker(st *failover.Status, s *failover.SiteStatus) (api.Blocker, bool) {
	if s.Health == failover.Up {
		return api.Blocker{}, false
	}
	var best *failover.VoteStatus
	where := ""
	consider := func(e *failover.EndpointStatus) {
		for j := range e.Votes {
			v := &e.Votes[j]
			if v.Fresh && !v.Up && (best == nil || v.Time.After(best.Time)) {
				best, where = v, e.Name
			}
		}
	}
	consider(&s.SiteChecks)
	for j := range s.Endpoints {
		consider(&s.Endpoints[j])
	}
	if s.Health == failover.Down && best != nil {
		obs := "down: " + best.Reason
		if where != "" {
			obs = "down on " + where + ": " + best.Reason
		}
		return api.Blocker{Check: best.Check, Observed: obs}, true
	}
	up, down := 0, 0
	for _, e := range s.Endpoints {
		up, down = max(up, e.Up), max(down, e.Down)
	}
	return api.Blocker{Check: "health", Observed: fmt.Sprintf("%s (votes up %d, down %d; quorum %d of %d fresh nodes)",
		s.Health, up, down, st.Quorum, st.FreshNodes)}, true
}

// syncBlocker names the sync check of a site that is not in_sync and the
// value its voters report.
func syncBlocker(s *failover.SiteStatus) (check, observed string) {
	if s.SyncCheck == "" {
		return "sync", fmt.Sprintf("%s (no sync check: run mark-synced once its data is in sync)", s.Sync)
	}
	var best *failover.SyncVoteStatus
	in := 0
	for j := range s.SyncVotes {
		v := &s.SyncVotes[j]
		if !v.Fresh {
			continue
		}
		if v.InSync {
			in++
		} else if best == nil || v.Time.After(best.Time) {
			best = v
		}
	}
	if best != nil {
		return s.SyncCheck, "not_in_sync: " + best.Reason
	}
	if in > 0 {
		return s.SyncCheck, fmt.Sprintf("%s: in_sync from %d nodes, short of a quorum", s.Sync, in)
	}
	return s.SyncCheck, fmt.Sprintf("%s: no verdict since %s", s.Sync, s.SyncSince.UTC().Format(time.RFC3339))
}

// routeBlocked lists, for each site preferred to the route's active site,
// what keeps it from taking over: its own state (admin, health, sync), else
// the service's fail-back policy (manual, or stable_for not yet met).
func routeBlocked(st *failover.Status, svc failover.ServiceStatus, r failover.RouteStatus) []api.Blocker {
	var out []api.Blocker
	for _, site := range r.Sites {
		if site == r.Active {
			break
		}
		if b, ok := siteBlocker(st, site); ok {
			out = append(out, b)
			continue
		}
		b := api.Blocker{Site: site}
		if modeOr(svc.Policy.Failback, failover.Manual) == string(failover.Manual) {
			b.Check, b.Observed = "failback", "manual: waiting for failoverctl promote "+site
		} else {
			s := st.Sites[slices.IndexFunc(st.Sites, func(s failover.SiteStatus) bool { return s.Name == site })]
			since := s.HealthSince
			if s.SyncSince.After(since) {
				since = s.SyncSince
			}
			b.Check = "stable_for"
			b.Observed = fmt.Sprintf("up and in_sync for %s of %s", st.Now.Sub(since).Truncate(time.Second), svc.Policy.StableFor)
		}
		out = append(out, b)
	}
	return out
}

// refusalBlocker finds the check and value behind a refused command: the
// error's own Blocking method when it has one; for a drain, the route the
// refusal names (failover.CommandError.Route) left without a site, or the
// first blocker of the site it would move to (.Site); else the target
// site's first blocker when the guard's message names it; else the message.
func refusalBlocker(err error, c failover.Command, st *failover.Status) (check, observed string) {
	var bl interface{ Blocking() (string, string) }
	if errors.As(err, &bl) {
		return bl.Blocking()
	}
	msg := err.Error()
	target := c.Site
	var ce *failover.CommandError
	if errors.As(err, &ce) {
		msg = ce.Msg
		switch {
		case c.Op != failover.OpDrain || ce.Route == "":
		case ce.Site != "": // the route would move to a site not in sync
			target = ce.Site
		default:
			return "route", ce.Route + " has no other up, undrained site"
		}
	}
	if st != nil && target != "" {
		var b api.Blocker
		ok := false
		if c.Op == failover.OpMarkSynced {
			if i := slices.IndexFunc(st.Sites, func(s failover.SiteStatus) bool { return s.Name == c.Site }); i >= 0 {
				b, ok = healthBlocker(st, &st.Sites[i])
			}
		} else if c.Op == failover.OpPromote || c.Op == failover.OpFailover || c.Op == failover.OpDrain {
			b, ok = siteBlocker(st, target)
		}
		if ok && (strings.Contains(msg, b.Check) || strings.Contains(msg, strings.SplitN(b.Observed, ":", 2)[0])) {
			return b.Check, b.Observed
		}
	}
	return "guard", msg
}

// answerAddrs returns the addresses an answer gives, in answer order.
func answerAddrs(a failover.Answer) []string {
	out := make([]string, 0, len(a.Endpoints))
	for _, e := range a.Endpoints {
		out = append(out, e.Address)
	}
	return out
}
