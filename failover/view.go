package failover

import (
	"fmt"
	"slices"
	"time"
)

// Answer is what the nameserver needs for one (service, route).
type Answer struct {
	Service string `json:"service"`
	Route   string `json:"route"`
	// Site is the active site.
	Site  string `json:"site"`
	Epoch uint64 `json:"epoch"`
	// Endpoints are the active site's endpoints that the cluster does not
	// see down, in spec order; all of them when every one is down.
	Endpoints []Endpoint `json:"endpoints"`
	// FailOpen is true when every endpoint of the site is down and all are
	// returned anyway (never SERVFAIL or NXDOMAIN).
	FailOpen  bool      `json:"fail_open"`
	Condition Condition `json:"condition"`
	// TTL is the service's TTL from the spec (0: the nameserver's default).
	TTL time.Duration `json:"ttl,omitempty"`
}

// Answer returns the answer for a service's route, or false if there is no
// such service or route. The result shares no memory with s.
func (s *State) Answer(service, route string) (Answer, bool) {
	si, ok := s.svcIdx[service]
	if !ok {
		return Answer{}, false
	}
	ri := routeIndex(s.spec.Services[si], route)
	if ri < 0 {
		return Answer{}, false
	}
	return s.answer(si, ri), true
}

// AnswersVersion counts the changes of what Answers returns: it increments
// (by one) at every Apply or Respec that changes it, never decreases, is kept
// by Respec and in snapshots, and so is the same on every node at the same
// applied index. It starts at 0 in New.
func (s *State) AnswersVersion() uint64 { return s.answers }

// Answers returns the answer of every (service, route), in service then
// route name order.
func (s *State) Answers() []Answer {
	var out []Answer
	for si := range s.services {
		for ri := range s.services[si].routes {
			out = append(out, s.answer(si, ri))
		}
	}
	return out
}

func (s *State) answer(si, ri int) Answer {
	sv := &s.services[si]
	r := &sv.routes[ri]
	st, sp := &s.sites[r.active], &s.spec.Sites[r.active]
	a := Answer{Service: s.spec.Services[si].Name, Route: s.spec.Services[si].Routes[ri].Name,
		Site: sp.Name, Epoch: r.epoch, Condition: r.cond, TTL: s.spec.Services[si].TTL}
	for j, e := range st.eps {
		if e.health != Down {
			a.Endpoints = append(a.Endpoints, sp.Endpoints[j])
		}
	}
	if len(a.Endpoints) == 0 {
		a.Endpoints, a.FailOpen = slices.Clone(sp.Endpoints), true
	}
	return a
}

// Status is everything the status page shows, as plain values.
type Status struct {
	Now        time.Time `json:"now"`
	Frozen     bool      `json:"frozen"`
	FreshNodes int       `json:"fresh_nodes"`
	// Quorum is the number of votes a verdict needs now (see Spec.MinQuorum).
	Quorum int `json:"quorum"`
	// QuorumWarning is Spec.QuorumWarning: not empty when min_quorum lowers
	// the quorum below a strict majority of the configured voters.
	QuorumWarning  string          `json:"quorum_warning,omitempty"`
	AnswersVersion uint64          `json:"answers_version"`
	Nodes          []NodeStatus    `json:"nodes"`
	Sites          []SiteStatus    `json:"sites"`
	Services       []ServiceStatus `json:"services"`
	History        []Entry         `json:"history"`
}

// NodeStatus is a voter's liveness and what its last beat reported.
type NodeStatus struct {
	Name string `json:"name"`
	// LastSeen is the time of the node's last event (zero: never heard).
	LastSeen time.Time `json:"last_seen"`
	Fresh    bool      `json:"fresh"`
	// Clock is the node's wall clock when it sent its last beat (zero: not
	// reported), for comparing with LastSeen (the leader's stamp).
	Clock time.Time `json:"clock"`
	// Digest is the node's config digest from its last beat.
	Digest string `json:"digest"`
	// Verdicts is the digest of the node's verdicts from its last beat;
	// HeldVerdicts is NodeVerdictsDigest: what the state holds for it. They
	// differ until the node's resend (a VerdictSet) is applied.
	Verdicts     string `json:"verdicts"`
	HeldVerdicts string `json:"held_verdicts"`
}

// SiteStatus is a site's state with the votes behind it.
type SiteStatus struct {
	Name        string           `json:"name"`
	Admin       Admin            `json:"admin"`
	Health      Health           `json:"health"`
	HealthSince time.Time        `json:"health_since"`
	Sync        Sync             `json:"sync"`
	SyncSince   time.Time        `json:"sync_since"`
	SyncCheck   string           `json:"sync_check,omitempty"`
	SyncVotes   []SyncVoteStatus `json:"sync_votes"`
	SiteChecks  EndpointStatus   `json:"site_checks"`
	Endpoints   []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is an endpoint's health and the votes behind it (Name and
// Address are empty for a site's site-wide checks).
type EndpointStatus struct {
	Name    string       `json:"name"`
	Address string       `json:"address"`
	Health  Health       `json:"health"`
	Since   time.Time    `json:"since"`
	Up      int          `json:"up"`   // fresh nodes voting up
	Down    int          `json:"down"` // fresh nodes voting down
	Votes   []VoteStatus `json:"votes"`
}

// VoteStatus is one node's last verdict on one check.
type VoteStatus struct {
	Node   string    `json:"node"`
	Check  string    `json:"check"`
	Up     bool      `json:"up"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
	Fresh  bool      `json:"fresh"`
}

// SyncVoteStatus is one node's last sync verdict (since the site last lost
// in_sync or was marked synced unforced). Attested: the node held this
// verdict when a forced mark-synced attested the site, so it does not count
// until the node gives a different one.
type SyncVoteStatus struct {
	Node     string    `json:"node"`
	InSync   bool      `json:"in_sync"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
	Fresh    bool      `json:"fresh"`
	Attested bool      `json:"attested,omitempty"`
}

// ServiceStatus is a service's policy and routes.
type ServiceStatus struct {
	Name   string        `json:"name"`
	Names  []string      `json:"names"`
	Policy Policy        `json:"policy"`
	Epoch  uint64        `json:"epoch"`
	Routes []RouteStatus `json:"routes"`
}

// RouteStatus is a route's active site, why, and its condition explained.
type RouteStatus struct {
	Name           string    `json:"name"`
	Sites          []string  `json:"sites"`
	Active         string    `json:"active"`
	Epoch          uint64    `json:"epoch"`
	Since          time.Time `json:"since"`
	Reason         string    `json:"reason"`
	Condition      Condition `json:"condition"`
	ConditionSince time.Time `json:"condition_since"`
	Detail         string    `json:"detail"`
}

// Status returns the whole state as plain values that share no memory with
// s, in name order, with the history oldest first.
func (s *State) Status() Status {
	st := Status{Now: s.now, Frozen: s.frozen, FreshNodes: s.fresh, Quorum: s.quorum,
		QuorumWarning: s.spec.QuorumWarning(), AnswersVersion: s.answers, History: slices.Clone(s.history)}
	for i, n := range s.nodes {
		st.Nodes = append(st.Nodes, NodeStatus{Name: s.spec.Nodes[i], LastSeen: n.lastSeen, Fresh: n.fresh,
			Clock: n.clock, Digest: n.digest, Verdicts: n.verdicts, HeldVerdicts: s.nodeVerdictsDigest(i)})
	}
	epStatus := func(ep Endpoint, e *endpoint) EndpointStatus {
		up, down := s.tally(e)
		out := EndpointStatus{Name: ep.Name, Address: ep.Address, Health: e.health, Since: e.since, Up: up, Down: down}
		for n, vs := range e.votes {
			for _, v := range vs {
				out.Votes = append(out.Votes, VoteStatus{Node: s.spec.Nodes[n], Check: v.check, Up: v.up,
					Reason: v.reason, Time: v.time, Fresh: s.nodes[n].fresh})
			}
		}
		return out
	}
	for i := range s.sites {
		site, sp := &s.sites[i], &s.spec.Sites[i]
		ss := SiteStatus{Name: sp.Name, Admin: site.admin, Health: site.health, HealthSince: site.healthSince,
			Sync: site.sync, SyncSince: site.syncSince, SyncCheck: sp.SyncCheck, SiteChecks: epStatus(Endpoint{}, &site.wide)}
		for n, v := range site.syncVotes {
			if v.set {
				ss.SyncVotes = append(ss.SyncVotes, SyncVoteStatus{Node: s.spec.Nodes[n], InSync: v.inSync,
					Reason: v.reason, Time: v.time, Fresh: s.nodes[n].fresh, Attested: v.attested})
			}
		}
		for j := range site.eps {
			ss.Endpoints = append(ss.Endpoints, epStatus(sp.Endpoints[j], &site.eps[j]))
		}
		st.Sites = append(st.Sites, ss)
	}
	for i := range s.services {
		sv, sp := &s.services[i], &s.spec.Services[i]
		ss := ServiceStatus{Name: sp.Name, Names: slices.Clone(sp.Names), Policy: sv.policy, Epoch: sv.epoch}
		for j := range sv.routes {
			r := &sv.routes[j]
			ss.Routes = append(ss.Routes, RouteStatus{Name: sp.Routes[j].Name, Sites: slices.Clone(sp.Routes[j].Sites),
				Active: s.spec.Sites[r.active].Name, Epoch: r.epoch, Since: r.since, Reason: r.reason,
				Condition: r.cond, ConditionSince: r.condSince, Detail: s.detail(i, j)})
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// detail explains a route's condition in words.
func (s *State) detail(si, ri int) string {
	sv := &s.services[si]
	r := &sv.routes[ri]
	active := s.spec.Sites[r.active].Name
	a := &s.sites[r.active]
	switch r.cond {
	case AllDown:
		return fmt.Sprintf("no site can take over from %s (down since %s): answering with %s anyway (fail open)",
			active, a.healthSince.Format(time.RFC3339), active)
	case Stranded:
		all := true
		for _, i := range r.sites {
			all = all && s.sites[i].admin == Drained
		}
		if all {
			return fmt.Sprintf("every site of the route is drained: answering with %s, which cannot move until a site is undrained", active)
		}
		return fmt.Sprintf("%s is drained but no other site of the route is up and undrained: answering with %s until one is (or undrain it)", active, active)
	case AwaitingOperator:
		why := fmt.Sprintf("%s down since %s", active, a.healthSince.Format(time.RFC3339))
		if a.admin == Drained {
			why = active + " is drained"
		}
		return why + "; failover is manual: run failover or promote"
	case Frozen:
		return "automatic decisions are frozen: run thaw to resume"
	case FailedOver:
		first := r.sites[0]
		p, name := &s.sites[first], s.spec.Sites[first].Name
		switch {
		case p.admin == Drained:
			return name + " is drained"
		case p.health != Up:
			return fmt.Sprintf("%s is %s", name, p.health)
		case p.sync != InSync:
			return fmt.Sprintf("%s is up, sync %s", name, p.sync)
		case sv.policy.Failback == Manual:
			return name + " is up and in_sync: fail-back is manual, run promote " + name
		}
		return name + " is up and in_sync: automatic fail-back after stable_for"
	}
	return ""
}
