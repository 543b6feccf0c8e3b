package web

import (
	"github.com/geodnsd/geodnsd/web/api"
	"github.com/prometheus/client_golang/prometheus"
)

// viewCollector exports the replicated failover state as this node last
// applied it, read from the rendered status at scrape time (no render of its
// own unless the state changed). The failover core is pure and has no
// metrics, so its state is exported here under geodnsd_failover_*. Every
// label is bounded by the configuration (service, route, site, endpoint,
// node) or by a fixed set of values (condition, health, sync, admin, vote).
// One-hot gauges carry every value with 0 or 1, so an alert can test == 1.
type viewCollector struct {
	r *renderer

	condition, conditionSince, active, epoch         *prometheus.Desc
	health, sync, syncSince, admin, votes, nodeFresh *prometheus.Desc
	frozen, configMismatch                           *prometheus.Desc
}

var (
	conditions = []string{"normal", "failed_over", "frozen", "awaiting_operator", "stranded", "all_down"}
	healths    = []string{"up", "down", "unknown"}
	syncs      = []string{"in_sync", "resyncing", "unknown"}
	admins     = []string{"active", "drained"}
)

func newViewCollector(r *renderer) *viewCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("geodnsd_failover_"+name, help, labels, nil)
	}
	return &viewCollector{
		r:              r,
		condition:      d("route_condition", "1 for the route's present condition (normal, failed_over, frozen, awaiting_operator, stranded, all_down), 0 for the others.", "service", "route", "condition"),
		conditionSince: d("route_condition_since_timestamp_seconds", "When the route's present condition began (Unix time).", "service", "route"),
		active:         d("route_active", "1 for the route's active site, 0 for its other sites.", "service", "route", "site"),
		epoch:          d("route_epoch", "The route's epoch: it increments with each decision or command that moves it.", "service", "route"),
		health:         d("site_health", "1 for the site's health as the cluster sees it (up, down, unknown), 0 for the others.", "site", "health"),
		sync:           d("site_sync", "1 for the site's sync state (in_sync, resyncing, unknown), 0 for the others.", "site", "sync"),
		syncSince:      d("site_sync_since_timestamp_seconds", "When the site's sync state last changed (Unix time).", "site"),
		admin:          d("site_admin", "1 for the site's administrative state (active, drained), 0 for the other.", "site", "admin"),
		votes:          d("endpoint_votes", "Fresh nodes voting the endpoint up or down (endpoint \"\" is the site-wide checks).", "site", "endpoint", "vote"),
		nodeFresh:      d("node_fresh", "1 if the node was heard from within vote_ttl.", "node"),
		frozen:         d("frozen", "1 while automatic decisions are frozen cluster-wide (failoverctl freeze)."),
		configMismatch: d("config_mismatch", "1 when fresh nodes report different config digests."),
	}
}

func (c *viewCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.condition, c.conditionSince, c.active, c.epoch, c.health, c.sync,
		c.syncSince, c.admin, c.votes, c.nodeFresh, c.frozen, c.configMismatch} {
		ch <- d
	}
}

func oneHot(ch chan<- prometheus.Metric, d *prometheus.Desc, values []string, cur string, labels ...string) {
	for _, v := range values {
		x := 0.0
		if v == cur {
			x = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, append(labels, v)...)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *viewCollector) Collect(ch chan<- prometheus.Metric) {
	s := &c.r.get().status
	g := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(c.frozen, g, b2f(s.Frozen))
	ch <- prometheus.MustNewConstMetric(c.configMismatch, g, b2f(s.ConfigMismatch))
	for _, svc := range s.Services {
		for _, r := range svc.Routes {
			oneHot(ch, c.condition, conditions, r.Condition, svc.Name, r.Name)
			if !r.ConditionSince.IsZero() {
				ch <- prometheus.MustNewConstMetric(c.conditionSince, g, float64(r.ConditionSince.UnixMilli())/1e3, svc.Name, r.Name)
			}
			ch <- prometheus.MustNewConstMetric(c.epoch, g, float64(r.Epoch), svc.Name, r.Name)
			oneHot(ch, c.active, r.Sites, r.Active, svc.Name, r.Name)
		}
	}
	for _, site := range s.Sites {
		oneHot(ch, c.health, healths, site.Health, site.Name)
		oneHot(ch, c.sync, syncs, site.Sync, site.Name)
		oneHot(ch, c.admin, admins, site.Admin, site.Name)
		if !site.SyncSince.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.syncSince, g, float64(site.SyncSince.UnixMilli())/1e3, site.Name)
		}
		eps := site.Endpoints
		if len(site.Checks.Voters) > 0 {
			eps = append([]api.Endpoint{site.Checks}, eps...)
		}
		for _, e := range eps {
			ch <- prometheus.MustNewConstMetric(c.votes, g, float64(e.Votes.Up), site.Name, e.Name, "up")
			ch <- prometheus.MustNewConstMetric(c.votes, g, float64(e.Votes.Down), site.Name, e.Name, "down")
		}
	}
	for _, n := range s.Nodes {
		ch <- prometheus.MustNewConstMetric(c.nodeFresh, g, b2f(n.Fresh), n.ID)
	}
}
