package node

// The first translation: a validated configuration → the failover core's
// Spec, and each service's geo Router (whose route names are the Spec's
// failover routes, so that the nameserver and the core speak of the same
// routes).

import (
	"fmt"
	"sort"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/geo"
)

// syncCheckName is the check name health gives every site's sync check.
const syncCheckName = "sync"

// voters returns the configured voters: the cluster's voting members, or
// this node alone without [cluster] nodes.
func voters(cfg *config.Config) []string {
	if len(cfg.Cluster.Nodes) == 0 {
		return []string{cfg.Node.ID}
	}
	var v []string
	for _, n := range cfg.Cluster.Nodes {
		if n.Voter {
			v = append(v, n.ID)
		}
	}
	return v
}

// failoverSpec translates cfg into the failover core's Spec. Every service
// gets its default route ("default", its sites) first, then its routes in
// config order; a nearest route becomes one route per site
// ("<route>/<site>", see geo.ExpandNearest).
func failoverSpec(cfg *config.Config) (failover.Spec, error) {
	sp := failover.Spec{
		Nodes:                  voters(cfg),
		VoteTTL:                cfg.Cluster.VoteTTL.Duration,
		MinQuorum:              cfg.Cluster.MinQuorum,
		TrustHealthWithoutSync: cfg.Cluster.TrustHealthWithoutSync,
		HistoryLimit:           cfg.Cluster.HistoryLimit,
	}
	for _, name := range sortedKeys(cfg.Sites) {
		s := cfg.Sites[name]
		ss := failover.SiteSpec{Name: name}
		for _, e := range s.Endpoints {
			ss.Endpoints = append(ss.Endpoints, failover.Endpoint{Name: e.Name, Address: e.Address})
		}
		if s.Sync != nil {
			ss.SyncCheck = syncCheckName
		}
		sp.Sites = append(sp.Sites, ss)
	}
	for _, name := range sortedKeys(cfg.Services) {
		svc := cfg.Services[name]
		fs := failover.ServiceSpec{
			Name: name,
			TTL:  svc.TTL.Duration,
			Policy: failover.Policy{
				Failover:    failover.Mode(svc.Failover),
				Failback:    failover.Mode(svc.Failback),
				DownFor:     svc.DownFor.Duration,
				StableFor:   svc.StableFor.Duration,
				MinInterval: svc.MinInterval.Duration,
			},
		}
		for _, n := range svc.Names {
			fs.Names = append(fs.Names, string(n))
		}
		fs.Routes = append(fs.Routes, failover.RouteSpec{Name: config.DefaultRouteName, Sites: append([]string(nil), svc.Sites...)})
		for _, r := range svc.Routes {
			if r.Nearest {
				for _, e := range geo.ExpandNearest(r.Name, geoSites(cfg, r.Sites)) {
					fs.Routes = append(fs.Routes, failover.RouteSpec{Name: e.Name, Sites: e.Sites})
				}
				continue
			}
			fs.Routes = append(fs.Routes, failover.RouteSpec{Name: r.Name, Sites: append([]string(nil), r.Sites...)})
		}
		sp.Services = append(sp.Services, fs)
	}
	return sp, nil
}

// geoSites gives the coordinates of the named sites, in that order.
func geoSites(cfg *config.Config, names []string) []geo.Site {
	out := make([]geo.Site, 0, len(names))
	for _, n := range names {
		s := cfg.Sites[n]
		g := geo.Site{Name: n}
		if s != nil && s.Coordinates != nil {
			g.Latitude, g.Longitude = s.Coordinates.Lat, s.Coordinates.Lon
		}
		out = append(out, g)
	}
	return out
}

// routers builds each service's geo Router: the default route for clients no
// rule matches, and one rule per configured route.
func routers(cfg *config.Config) (map[string]*geo.Router, error) {
	out := map[string]*geo.Router{}
	for _, name := range sortedKeys(cfg.Services) {
		svc := cfg.Services[name]
		var rules []geo.Rule
		for _, r := range svc.Routes {
			g := geo.Rule{Name: r.Name, ASNs: r.ASNs}
			for _, c := range r.Continents {
				g.Continents = append(g.Continents, string(c))
			}
			for _, c := range r.Countries {
				g.Countries = append(g.Countries, string(c))
			}
			for _, c := range r.Subdivisions {
				g.Subdivisions = append(g.Subdivisions, string(c))
			}
			for _, p := range r.Prefixes {
				g.Prefixes = append(g.Prefixes, p.Prefix)
			}
			if r.Nearest {
				g.Nearest = geoSites(cfg, r.Sites)
			}
			rules = append(rules, g)
		}
		rt, err := geo.NewRouter(config.DefaultRouteName, rules)
		if err != nil {
			return nil, fmt.Errorf("services.%s.routes: %w", name, err)
		}
		out[name] = rt
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
