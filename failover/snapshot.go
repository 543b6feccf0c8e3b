package failover

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// SnapshotVersion is the snapshot format this build writes. It reads every
// version from 1 up to this one; a field added by a later version must have
// a zero value that means what older versions did.
const SnapshotVersion = 1

type snapshot struct {
	Version        int           `json:"version"`
	Spec           Spec          `json:"spec"`
	Now            time.Time     `json:"now"`
	Frozen         bool          `json:"frozen"`
	Seq            uint64        `json:"seq"`
	AnswersVersion uint64        `json:"answers_version"`
	Nodes          []snapNode    `json:"nodes"`
	Sites          []snapSite    `json:"sites"`
	Services       []snapService `json:"services"`
	Retired        []snapRetired `json:"retired"`
	History        []Entry       `json:"history"`
}

type snapNode struct {
	Name     string    `json:"name"`
	LastSeen time.Time `json:"last_seen"`
	Clock    time.Time `json:"clock"`
	Digest   string    `json:"digest"`
	Verdicts string    `json:"verdicts"`
}

// snapRetired is the epoch a removed service left behind.
type snapRetired struct {
	Service string `json:"service"`
	Epoch   uint64 `json:"epoch"`
}

type snapSite struct {
	Name        string         `json:"name"`
	Admin       Admin          `json:"admin"`
	Health      Health         `json:"health"`
	HealthSince time.Time      `json:"health_since"`
	Sync        Sync           `json:"sync"`
	SyncSince   time.Time      `json:"sync_since"`
	Exposed     bool           `json:"exposed"`
	SiteChecks  snapEndpoint   `json:"site_checks"`
	Endpoints   []snapEndpoint `json:"endpoints"`
	SyncVotes   []snapSyncVote `json:"sync_votes"`
}

type snapEndpoint struct {
	Name   string     `json:"name"`
	Health Health     `json:"health"`
	Since  time.Time  `json:"since"`
	Votes  []snapVote `json:"votes"`
}

type snapVote struct {
	Node   string    `json:"node"`
	Check  string    `json:"check"`
	Up     bool      `json:"up"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

type snapSyncVote struct {
	Node     string    `json:"node"`
	InSync   bool      `json:"in_sync"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
	Attested bool      `json:"attested,omitempty"`
}

type snapService struct {
	Name     string      `json:"name"`
	Policy   Policy      `json:"policy"`
	Epoch    uint64      `json:"epoch"`
	LastMove time.Time   `json:"last_move"`
	Routes   []snapRoute `json:"routes"`
}

type snapRoute struct {
	Name           string    `json:"name"`
	Active         string    `json:"active"`
	Epoch          uint64    `json:"epoch"`
	Since          time.Time `json:"since"`
	Reason         string    `json:"reason"`
	Condition      Condition `json:"condition"`
	ConditionSince time.Time `json:"condition_since"`
}

// MarshalSnapshot encodes s as versioned JSON. Equal states give equal
// bytes: every list is in a fixed order and every time is UTC.
func MarshalSnapshot(s *State) ([]byte, error) {
	snap := snapshot{Version: SnapshotVersion, Spec: s.spec, Now: s.now, Frozen: s.frozen, Seq: s.seq,
		AnswersVersion: s.answers, History: s.history, Retired: []snapRetired{}}
	if snap.History == nil {
		snap.History = []Entry{}
	}
	for _, name := range slices.Sorted(maps.Keys(s.retired)) {
		snap.Retired = append(snap.Retired, snapRetired{Service: name, Epoch: s.retired[name]})
	}
	for i, n := range s.nodes {
		snap.Nodes = append(snap.Nodes, snapNode{Name: s.spec.Nodes[i], LastSeen: n.lastSeen, Clock: n.clock,
			Digest: n.digest, Verdicts: n.verdicts})
	}
	epSnap := func(name string, e *endpoint) snapEndpoint {
		out := snapEndpoint{Name: name, Health: e.health, Since: e.since, Votes: []snapVote{}}
		for n, vs := range e.votes {
			for _, v := range vs {
				out.Votes = append(out.Votes, snapVote{Node: s.spec.Nodes[n], Check: v.check, Up: v.up, Reason: v.reason, Time: v.time})
			}
		}
		return out
	}
	for i := range s.sites {
		st, sp := &s.sites[i], &s.spec.Sites[i]
		ss := snapSite{Name: sp.Name, Admin: st.admin, Health: st.health, HealthSince: st.healthSince,
			Sync: st.sync, SyncSince: st.syncSince, Exposed: st.exposed, SiteChecks: epSnap("", &st.wide),
			Endpoints: make([]snapEndpoint, len(st.eps)), SyncVotes: []snapSyncVote{}}
		for j := range st.eps {
			ss.Endpoints[j] = epSnap(sp.Endpoints[j].Name, &st.eps[j])
		}
		for n, v := range st.syncVotes {
			if v.set {
				ss.SyncVotes = append(ss.SyncVotes, snapSyncVote{Node: s.spec.Nodes[n], InSync: v.inSync, Reason: v.reason,
					Time: v.time, Attested: v.attested})
			}
		}
		snap.Sites = append(snap.Sites, ss)
	}
	snap.Services = []snapService{}
	for i := range s.services {
		sv, sp := &s.services[i], &s.spec.Services[i]
		ss := snapService{Name: sp.Name, Policy: sv.policy, Epoch: sv.epoch, LastMove: sv.lastMove}
		for j := range sv.routes {
			r := &sv.routes[j]
			ss.Routes = append(ss.Routes, snapRoute{Name: sp.Routes[j].Name, Active: s.spec.Sites[r.active].Name,
				Epoch: r.epoch, Since: r.since, Reason: r.reason, Condition: r.cond, ConditionSince: r.condSince})
		}
		snap.Services = append(snap.Services, ss)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("marshal failover snapshot: %w", err)
	}
	return b, nil
}

// UnmarshalSnapshot decodes what MarshalSnapshot wrote (any version up to
// SnapshotVersion), checking it against its own spec.
func UnmarshalSnapshot(b []byte) (*State, error) {
	s, err := unmarshalSnapshot(b)
	if err != nil {
		return nil, fmt.Errorf("unmarshal failover snapshot: %w", err)
	}
	return s, nil
}

func unmarshalSnapshot(b []byte) (*State, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, err
	}
	switch {
	case head.Version < 1:
		return nil, fmt.Errorf("missing or bad version %d", head.Version)
	case head.Version > SnapshotVersion:
		return nil, fmt.Errorf("version %d is newer than this build reads (%d)", head.Version, SnapshotVersion)
	}
	var snap snapshot
	if err := strictJSON(b, &snap); err != nil {
		return nil, err
	}
	sp, err := normalize(snap.Spec)
	if err != nil {
		return nil, err
	}
	var terr error
	tm := func(t time.Time) time.Time {
		t, err := utc(t, nil)
		if err != nil && terr == nil {
			terr = err
		}
		return t
	}
	s := skeleton(sp)
	s.now, s.frozen, s.seq, s.answers = tm(snap.Now), snap.Frozen, snap.Seq, snap.AnswersVersion
	for i, r := range snap.Retired {
		if _, ok := s.svcIdx[r.Service]; ok || r.Service == "" || r.Epoch == 0 || (i > 0 && r.Service <= snap.Retired[i-1].Service) {
			return nil, fmt.Errorf("retired[%d]: service %q with epoch %d: empty, zero, configured, repeated or out of order", i, r.Service, r.Epoch)
		}
		if s.retired == nil {
			s.retired = map[string]uint64{}
		}
		s.retired[r.Service] = r.Epoch
	}
	if len(snap.History) > sp.HistoryLimit {
		return nil, fmt.Errorf("history has %d entries, limit %d", len(snap.History), sp.HistoryLimit)
	}
	for i, e := range snap.History {
		e.Time = tm(e.Time)
		if i > 0 && e.Seq <= snap.History[i-1].Seq || e.Seq > s.seq {
			return nil, fmt.Errorf("history[%d]: sequence %d out of order", i, e.Seq)
		}
		s.history = append(s.history, e)
	}

	if len(snap.Nodes) != len(sp.Nodes) {
		return nil, fmt.Errorf("nodes: %d entries for %d nodes", len(snap.Nodes), len(sp.Nodes))
	}
	nodeDone := make([]bool, len(sp.Nodes))
	for _, n := range snap.Nodes {
		i, ok := s.nodeIdx[n.Name]
		if !ok || nodeDone[i] {
			return nil, fmt.Errorf("nodes: unknown or repeated node %q", n.Name)
		}
		nodeDone[i] = true
		if n.LastSeen.IsZero() && (!n.Clock.IsZero() || n.Digest != "" || n.Verdicts != "") {
			return nil, fmt.Errorf("nodes: node %q never seen but has beat fields", n.Name)
		}
		nd := &s.nodes[i]
		nd.lastSeen, nd.clock, nd.digest, nd.verdicts = tm(n.LastSeen), tm(n.Clock), n.Digest, n.Verdicts
	}

	if len(snap.Sites) != len(sp.Sites) {
		return nil, fmt.Errorf("sites: %d entries for %d sites", len(snap.Sites), len(sp.Sites))
	}
	done := make([]bool, len(sp.Sites))
	for _, ss := range snap.Sites {
		i, ok := s.siteIdx[ss.Name]
		if !ok || done[i] {
			return nil, fmt.Errorf("sites: unknown or repeated site %q", ss.Name)
		}
		done[i] = true
		st := &s.sites[i]
		path := "sites." + ss.Name
		if ss.Admin != AdminActive && ss.Admin != Drained {
			return nil, fmt.Errorf("%s.admin: bad value %q", path, ss.Admin)
		}
		if !validHealth(ss.Health) {
			return nil, fmt.Errorf("%s.health: bad value %q", path, ss.Health)
		}
		if ss.Sync != InSync && ss.Sync != Resyncing && ss.Sync != SyncUnknown {
			return nil, fmt.Errorf("%s.sync: bad value %q", path, ss.Sync)
		}
		st.admin, st.health, st.healthSince = ss.Admin, ss.Health, tm(ss.HealthSince)
		st.sync, st.syncSince, st.exposed = ss.Sync, tm(ss.SyncSince), ss.Exposed
		if ss.SiteChecks.Name != "" {
			return nil, fmt.Errorf("%s.site_checks: name must be empty", path)
		}
		if err := s.loadEndpoint(&st.wide, ss.SiteChecks, tm); err != nil {
			return nil, fmt.Errorf("%s.site_checks: %w", path, err)
		}
		if len(ss.Endpoints) != len(st.eps) {
			return nil, fmt.Errorf("%s.endpoints: %d entries for %d endpoints", path, len(ss.Endpoints), len(st.eps))
		}
		epDone := make([]bool, len(st.eps))
		for _, se := range ss.Endpoints {
			j, ok := st.epIdx[se.Name]
			if !ok || epDone[j] {
				return nil, fmt.Errorf("%s.endpoints: unknown or repeated endpoint %q", path, se.Name)
			}
			epDone[j] = true
			if err := s.loadEndpoint(&st.eps[j], se, tm); err != nil {
				return nil, fmt.Errorf("%s.endpoints.%s: %w", path, se.Name, err)
			}
		}
		for _, v := range ss.SyncVotes {
			n, ok := s.nodeIdx[v.Node]
			if !ok || st.syncVotes[n].set {
				return nil, fmt.Errorf("%s.sync_votes: unknown or repeated node %q", path, v.Node)
			}
			if sp.Sites[i].SyncCheck == "" {
				return nil, fmt.Errorf("%s.sync_votes: site has no sync check", path)
			}
			if v.Attested && st.sync != InSync {
				return nil, fmt.Errorf("%s.sync_votes: node %q: attested vote on a site that is %s, not in_sync", path, v.Node, st.sync)
			}
			st.syncVotes[n] = syncVote{set: true, inSync: v.InSync, reason: v.Reason, time: tm(v.Time), attested: v.Attested}
		}
	}

	if len(snap.Services) != len(sp.Services) {
		return nil, fmt.Errorf("services: %d entries for %d services", len(snap.Services), len(sp.Services))
	}
	svDone := make([]bool, len(sp.Services))
	for _, ss := range snap.Services {
		i, ok := s.svcIdx[ss.Name]
		if !ok || svDone[i] {
			return nil, fmt.Errorf("services: unknown or repeated service %q", ss.Name)
		}
		svDone[i] = true
		path := "services." + ss.Name
		sv := &s.services[i]
		if !ss.Policy.Failover.valid() || !ss.Policy.Failback.valid() || ss.Policy.DownFor < 0 ||
			ss.Policy.StableFor < 0 || ss.Policy.MinInterval < 0 {
			return nil, fmt.Errorf("%s.policy: bad policy %+v", path, ss.Policy)
		}
		sv.policy, sv.epoch, sv.lastMove = ss.Policy, ss.Epoch, tm(ss.LastMove)
		if len(ss.Routes) != len(sv.routes) {
			return nil, fmt.Errorf("%s.routes: %d entries for %d routes", path, len(ss.Routes), len(sv.routes))
		}
		rDone := make([]bool, len(sv.routes))
		for _, sr := range ss.Routes {
			j := routeIndex(sp.Services[i], sr.Name)
			if j < 0 || rDone[j] {
				return nil, fmt.Errorf("%s.routes: unknown or repeated route %q", path, sr.Name)
			}
			rDone[j] = true
			r := &sv.routes[j]
			a, ok := s.siteIdx[sr.Active]
			if !ok || !containsInt(r.sites, a) {
				return nil, fmt.Errorf("%s.routes.%s.active: site %q not in route", path, sr.Name, sr.Active)
			}
			switch sr.Condition {
			case Normal, FailedOver, AwaitingOperator, AllDown, Stranded, Frozen:
			default:
				return nil, fmt.Errorf("%s.routes.%s.condition: bad value %q", path, sr.Name, sr.Condition)
			}
			if sr.Epoch > ss.Epoch {
				return nil, fmt.Errorf("%s.routes.%s.epoch: %d is after the service's %d", path, sr.Name, sr.Epoch, ss.Epoch)
			}
			r.active, r.epoch, r.since, r.reason = a, sr.Epoch, tm(sr.Since), sr.Reason
			r.cond, r.condSince = sr.Condition, tm(sr.ConditionSince)
		}
	}
	if terr != nil {
		return nil, terr
	}
	s.derive()
	return s, nil
}

func validHealth(h Health) bool { return h == Up || h == Down || h == HealthUnknown }

func (s *State) loadEndpoint(e *endpoint, se snapEndpoint, tm func(time.Time) time.Time) error {
	if !validHealth(se.Health) {
		return fmt.Errorf("health: bad value %q", se.Health)
	}
	e.health, e.since = se.Health, tm(se.Since)
	for _, v := range se.Votes {
		n, ok := s.nodeIdx[v.Node]
		if !ok {
			return fmt.Errorf("votes: unknown node %q", v.Node)
		}
		if v.Check == "" {
			return errors.New("votes: empty check")
		}
		vs := e.votes[n]
		i, found := slices.BinarySearchFunc(vs, v.Check, func(a checkVote, c string) int { return strings.Compare(a.check, c) })
		if found {
			return fmt.Errorf("votes: repeated vote of node %s on check %q", v.Node, v.Check)
		}
		e.votes[n] = slices.Insert(vs, i, checkVote{check: v.Check, up: v.Up, reason: v.Reason, time: tm(v.Time)})
	}
	return nil
}

// derive recomputes what refresh derives from nodes, routes and now,
// without changing anything recorded (used after decoding).
func (s *State) derive() {
	s.deriveNodes()
	s.countActive()
}
