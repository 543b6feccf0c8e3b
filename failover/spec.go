package failover

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Mode says whether a move is made by the leader on its own (Auto) or waits
// for an operator (Manual).
type Mode string

// Modes of a service's failover and fail-back policy.
const (
	Auto   Mode = "auto"
	Manual Mode = "manual"
)

func (m Mode) valid() bool { return m == Auto || m == Manual }

// DefaultHistoryLimit is the number of history entries kept when
// Spec.HistoryLimit is zero.
const DefaultHistoryLimit = 1000

// Policy is a service's failover policy. The zero value is valid: failover
// auto, fail-back manual, no hold-downs.
type Policy struct {
	// Failover says who moves the service away from a down active site.
	// Empty means Auto.
	Failover Mode `json:"failover"`
	// Failback says who moves the service back to a preferred site that is
	// healthy and in sync again. Empty means Manual.
	Failback Mode `json:"failback"`
	// DownFor is how long the active site must have been down before the
	// service fails over (or enters awaiting_operator or all_down).
	DownFor time.Duration `json:"down_for"`
	// StableFor is how long a preferred site must have been both healthy and
	// in_sync before an automatic fail-back to it.
	StableFor time.Duration `json:"stable_for"`
	// MinInterval is the least time between a change of the service's active
	// sites (by a decision or a command) and the next automatic decision.
	MinInterval time.Duration `json:"min_interval"`
}

// DefaultMaxClockStep is Spec.MaxClockStep when it is zero.
const DefaultMaxClockStep = time.Hour

// Endpoint is one address of a site (DESIGN.md §2, seams.md §1): Name
// identifies it in observations, votes and status (config defaults it to the
// address); Address is what DNS answers with, an IP address (A/AAAA) or a
// host name (CNAME target). failover does not parse Address.
type Endpoint struct {
	// Name is unique within its site and not empty.
	Name string `json:"name"`
	// Address is not empty.
	Address string `json:"address"`
}

// SiteSpec describes a site.
type SiteSpec struct {
	Name string `json:"name"`
	// Endpoints are the site's endpoints, in answer order; names are unique
	// within the site.
	Endpoints []Endpoint `json:"endpoints"`
	// SyncCheck names the site's sync check; empty means the site has none
	// and needs mark-synced (or Spec.TrustHealthWithoutSync) to regain
	// in_sync.
	SyncCheck string `json:"sync_check,omitempty"`
}

// RouteSpec is an ordered site list for a group of clients: "default" when
// there is no geo map, "eu" -> [london, dallas] when there is.
type RouteSpec struct {
	Name  string   `json:"name"`
	Sites []string `json:"sites"`
}

// ServiceSpec describes a service: DNS names that always move together.
type ServiceSpec struct {
	Name   string      `json:"name"`
	Names  []string    `json:"names"`
	Routes []RouteSpec `json:"routes"`
	Policy Policy      `json:"policy"`
	// TTL is the TTL of the service's answers (whole seconds; 0: the
	// nameserver's own default). It is part of the replicated spec so that
	// every node answers with the same TTL from the same log index.
	TTL time.Duration `json:"ttl,omitempty"`
}

// Spec is everything the failover core is configured with.
type Spec struct {
	Sites    []SiteSpec    `json:"sites"`
	Services []ServiceSpec `json:"services"`
	// Nodes are the voters (cluster members that probe).
	Nodes []string `json:"nodes"`
	// VoteTTL is how long a node counts after it was last heard from. A node
	// is fresh at time t when t - last_seen < VoteTTL. Must be positive.
	VoteTTL time.Duration `json:"vote_ttl"`
	// MinQuorum, when not zero, replaces the strict majority of the
	// configured voters (len(Nodes)/2+1) as the least number of votes a
	// verdict needs. The quorum is always at least a strict majority of the
	// fresh nodes too: quorum = max(base, fresh/2+1) with base = MinQuorum,
	// or len(Nodes)/2+1 when MinQuorum is 0. A MinQuorum below that majority
	// lowers the quorum on purpose (Spec.QuorumWarning says so, for the
	// caller to log); one above raises it. 0 <= MinQuorum <= len(Nodes).
	MinQuorum int `json:"min_quorum"`
	// TrustHealthWithoutSync lets a site with no sync check regain in_sync as
	// soon as it is healthy, instead of waiting for mark-synced.
	TrustHealthWithoutSync bool `json:"trust_health_without_sync"`
	// HistoryLimit bounds the history; zero means DefaultHistoryLimit.
	HistoryLimit int `json:"history_limit"`
	// MaxClockStep is the most one event (or Respec) may advance the state's
	// clock; an event stamped later is applied at the state's time plus
	// MaxClockStep and Result.ClockClamped says so. Zero means
	// DefaultMaxClockStep; it must not be negative.
	MaxClockStep time.Duration `json:"max_clock_step"`
}

// QuorumWarning returns "" unless sp.MinQuorum lowers the quorum below a
// strict majority of the configured voters; then it says so in words, for
// the caller to log at start and on reload (failover itself cannot log).
// With the default (MinQuorum 0) nodes that are not a majority of the
// configured voters never decide anything.
func (sp Spec) QuorumWarning() string {
	n := len(sp.Nodes)
	if sp.MinQuorum <= 0 || sp.MinQuorum >= n/2+1 {
		return ""
	}
	return fmt.Sprintf("min_quorum %d is below a strict majority of the %d configured voters (%d): %d nodes that agree, cut off from the others, can fail services over",
		sp.MinQuorum, n, n/2+1, sp.MinQuorum)
}

// baseQuorum is the quorum before the fresh-node majority: MinQuorum, or a
// strict majority of the configured voters.
func (sp *Spec) baseQuorum() int {
	if sp.MinQuorum > 0 {
		return sp.MinQuorum
	}
	return len(sp.Nodes)/2 + 1
}

// FieldError is a spec problem at a field path such as
// services.cas.routes.eu.sites[1].
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// normalize validates spec and returns a deep copy in canonical form: defaults
// filled in; sites, services, routes and nodes sorted by name (endpoint and
// route site order is meaningful and kept). All problems are reported, joined,
// in a stable order.
func normalize(in Spec) (Spec, error) {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	sp := cloneSpec(in)

	if len(sp.Nodes) == 0 {
		bad("nodes", "at least one node is required")
	}
	seen := map[string]bool{}
	for i, n := range sp.Nodes {
		switch {
		case n == "":
			bad(fmt.Sprintf("nodes[%d]", i), "empty name")
		case seen[n]:
			bad(fmt.Sprintf("nodes[%d]", i), "duplicate node %q", n)
		}
		seen[n] = true
	}
	if sp.VoteTTL <= 0 {
		bad("vote_ttl", "must be positive, got %s", sp.VoteTTL)
	}
	if sp.MinQuorum < 0 || sp.MinQuorum > len(sp.Nodes) {
		bad("min_quorum", "must be between 0 and the number of nodes (%d), got %d", len(sp.Nodes), sp.MinQuorum)
	}
	if sp.HistoryLimit < 0 {
		bad("history_limit", "must not be negative, got %d", sp.HistoryLimit)
	}
	if sp.HistoryLimit == 0 {
		sp.HistoryLimit = DefaultHistoryLimit
	}
	if sp.MaxClockStep < 0 {
		bad("max_clock_step", "must not be negative, got %s", sp.MaxClockStep)
	}
	if sp.MaxClockStep == 0 {
		sp.MaxClockStep = DefaultMaxClockStep
	}

	// No sites (and so no services) is a valid spec: a nameserver that
	// serves zone files only still runs the cluster, to agree on nothing.
	sites := map[string]bool{}
	for i, s := range sp.Sites {
		path := fmt.Sprintf("sites[%d]", i)
		if s.Name == "" {
			bad(path+".name", "empty name")
			continue
		}
		if sites[s.Name] {
			bad(path+".name", "duplicate site %q", s.Name)
			continue
		}
		sites[s.Name] = true
		path = "sites." + s.Name
		if len(s.Endpoints) == 0 {
			bad(path+".endpoints", "at least one endpoint is required")
		}
		eps := map[string]bool{}
		for j, e := range s.Endpoints {
			p := fmt.Sprintf("%s.endpoints[%d]", path, j)
			switch {
			case e.Name == "":
				bad(p+".name", "empty name")
			case eps[e.Name]:
				bad(p+".name", "duplicate endpoint %q", e.Name)
			}
			if e.Address == "" {
				bad(p+".address", "empty address")
			}
			eps[e.Name] = true
		}
	}

	svcs := map[string]bool{}
	names := map[string]string{}
	for i := range sp.Services {
		s := &sp.Services[i]
		path := fmt.Sprintf("services[%d]", i)
		if s.Name == "" {
			bad(path+".name", "empty name")
			continue
		}
		if svcs[s.Name] {
			bad(path+".name", "duplicate service %q", s.Name)
			continue
		}
		svcs[s.Name] = true
		path = "services." + s.Name
		if len(s.Names) == 0 {
			bad(path+".names", "at least one name is required")
		}
		for j, n := range s.Names {
			p := fmt.Sprintf("%s.names[%d]", path, j)
			switch other, dup := names[n]; {
			case n == "":
				bad(p, "empty name")
			case dup && other == s.Name:
				bad(p, "duplicate name %q", n)
			case dup:
				bad(p, "name %q is also in service %q", n, other)
			default:
				names[n] = s.Name
			}
		}
		if len(s.Routes) == 0 {
			bad(path+".routes", "at least one route is required")
		}
		routes := map[string]bool{}
		for j, r := range s.Routes {
			rp := fmt.Sprintf("%s.routes[%d]", path, j)
			if r.Name == "" {
				bad(rp+".name", "empty name")
				continue
			}
			if routes[r.Name] {
				bad(rp+".name", "duplicate route %q", r.Name)
				continue
			}
			routes[r.Name] = true
			rp = path + ".routes." + r.Name
			if len(r.Sites) == 0 {
				bad(rp+".sites", "at least one site is required")
			}
			in := map[string]bool{}
			for k, site := range r.Sites {
				p := fmt.Sprintf("%s.sites[%d]", rp, k)
				switch {
				case !sites[site]:
					bad(p, "unknown site %q", site)
				case in[site]:
					bad(p, "duplicate site %q", site)
				}
				in[site] = true
			}
		}
		pp := path + ".policy"
		if s.Policy.Failover == "" {
			s.Policy.Failover = Auto
		}
		if s.Policy.Failback == "" {
			s.Policy.Failback = Manual
		}
		if !s.Policy.Failover.valid() {
			bad(pp+".failover", "must be auto or manual, got %q", s.Policy.Failover)
		}
		if !s.Policy.Failback.valid() {
			bad(pp+".failback", "must be auto or manual, got %q", s.Policy.Failback)
		}
		for _, d := range []struct {
			name string
			v    time.Duration
		}{{"down_for", s.Policy.DownFor}, {"stable_for", s.Policy.StableFor}, {"min_interval", s.Policy.MinInterval}} {
			if d.v < 0 {
				bad(pp+"."+d.name, "must not be negative, got %s", d.v)
			}
		}
		if s.TTL < 0 || s.TTL%time.Second != 0 || s.TTL > (1<<31-1)*time.Second {
			bad(path+".ttl", "must be whole seconds from 0 to 2147483647s (RFC 2181 §8), got %s", s.TTL)
		}
	}
	if len(errs) > 0 {
		return Spec{}, fmt.Errorf("invalid failover spec: %w", errors.Join(errs...))
	}
	slices.Sort(sp.Nodes)
	slices.SortFunc(sp.Sites, func(a, b SiteSpec) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(sp.Services, func(a, b ServiceSpec) int { return strings.Compare(a.Name, b.Name) })
	for i := range sp.Services {
		slices.SortFunc(sp.Services[i].Routes, func(a, b RouteSpec) int { return strings.Compare(a.Name, b.Name) })
	}
	return sp, nil
}

// cloneSpec returns a deep copy of sp.
func cloneSpec(sp Spec) Spec {
	out := sp
	out.Nodes = slices.Clone(sp.Nodes)
	out.Sites = make([]SiteSpec, len(sp.Sites))
	for i, s := range sp.Sites {
		s.Endpoints = slices.Clone(s.Endpoints)
		out.Sites[i] = s
	}
	out.Services = make([]ServiceSpec, len(sp.Services))
	for i, s := range sp.Services {
		s.Names = slices.Clone(s.Names)
		routes := make([]RouteSpec, len(s.Routes))
		for j, r := range s.Routes {
			r.Sites = slices.Clone(r.Sites)
			routes[j] = r
		}
		s.Routes = routes
		out.Services[i] = s
	}
	return out
}

func siteSpecEqual(a, b SiteSpec) bool {
	return a.Name == b.Name && a.SyncCheck == b.SyncCheck && slices.Equal(a.Endpoints, b.Endpoints)
}
