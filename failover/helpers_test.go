package failover

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// eps makes endpoints named by their addresses (as config defaults them).
func eps(addrs ...string) []Endpoint {
	out := make([]Endpoint, len(addrs))
	for i, a := range addrs {
		out[i] = Endpoint{Name: a, Address: a}
	}
	return out
}

// addrs lists endpoints' addresses.
func addrs(es []Endpoint) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Address
	}
	return out
}

var nodes6 = []string{"ns1", "ns2", "ns3", "ns4", "ns5", "ns6"}

// storySpec is the project's headline setup: cas served from dallas, with
// losangeles as standby (and london as a third site for routes that list
// it), six nodes.
func storySpec(failover, failback Mode) Spec {
	return Spec{
		Sites: []SiteSpec{
			{Name: "dallas", Endpoints: eps("192.0.2.10", "192.0.2.11"), SyncCheck: "replication"},
			{Name: "losangeles", Endpoints: eps("198.51.100.10", "198.51.100.11"), SyncCheck: "replication"},
			{Name: "london", Endpoints: eps("203.0.113.10"), SyncCheck: "replication"},
		},
		Services: []ServiceSpec{{
			Name:   "cas",
			Names:  []string{"cas.example.com.", "autodiscover.example.com.", "owa.example.com."},
			Routes: []RouteSpec{{Name: "default", Sites: []string{"dallas", "losangeles"}}},
			Policy: Policy{Failover: failover, Failback: failback, DownFor: 30 * time.Second,
				StableFor: 5 * time.Minute, MinInterval: time.Minute},
		}},
		Nodes:   nodes6,
		VoteTTL: 48 * time.Hour,
	}
}

// threeSiteSpec has one service whose route lists all three sites.
func threeSiteSpec(failover, failback Mode) Spec {
	sp := storySpec(failover, failback)
	sp.Services[0].Routes[0].Sites = []string{"dallas", "losangeles", "london"}
	return sp
}

type harness struct {
	t *testing.T
	s *State
}

func newHarness(t *testing.T, sp Spec) *harness {
	t.Helper()
	s, err := New(sp, t0)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, s: s}
}

func (h *harness) apply(e Event) Result {
	h.t.Helper()
	res, err := Apply(h.s, e)
	if err != nil {
		h.t.Fatalf("Apply(%#v): %v", e, err)
	}
	return res
}

// endpoint makes nodes vote on one endpoint's "https" check at when.
func (h *harness) endpoint(site, ep string, up bool, when time.Time, nodes ...string) {
	h.t.Helper()
	reason := "200 OK"
	if !up {
		reason = "connect: connection refused"
	}
	for _, n := range nodes {
		h.apply(Observation{Time: when, Node: n, Site: site, Endpoint: ep, Check: "https", Up: up, Reason: reason})
	}
}

// site makes nodes vote on every endpoint of site.
func (h *harness) site(site string, up bool, when time.Time, nodes ...string) {
	h.t.Helper()
	for _, ep := range h.s.spec.Sites[h.s.siteIdx[site]].Endpoints {
		h.endpoint(site, ep.Name, up, when, nodes...)
	}
}

// allUp makes all six nodes see every site up at when, and every sync
// check in sync.
func (h *harness) allUp(when time.Time) {
	h.t.Helper()
	for _, sp := range h.s.spec.Sites {
		h.site(sp.Name, true, when, nodes6...)
		if sp.SyncCheck != "" {
			h.sync(sp.Name, true, "copy_queue_length=0", when, nodes6...)
		}
	}
}

func (h *harness) sync(site string, in bool, reason string, when time.Time, nodes ...string) {
	h.t.Helper()
	for _, n := range nodes {
		h.apply(SyncVerdict{Time: when, Node: n, Site: site, Check: "replication", InSync: in, Reason: reason})
	}
}

// decide applies a Tick at when and returns Decide's proposals.
func (h *harness) decide(when time.Time) []Decision {
	h.t.Helper()
	h.apply(Tick{Time: when})
	return Decide(h.s, when)
}

// step decides at when and applies every decision; it returns them.
func (h *harness) step(when time.Time) []Decision {
	h.t.Helper()
	ds := h.decide(when)
	for _, d := range ds {
		if res := h.apply(d); res.Ignored != "" {
			h.t.Fatalf("decision %+v ignored: %s", d, res.Ignored)
		}
	}
	return ds
}

func (h *harness) cmd(c Command) error {
	h.t.Helper()
	if c.Time.IsZero() {
		c.Time = h.s.now
	}
	checkErr := Check(h.s, c)
	_, err := Apply(h.s, c)
	if (checkErr == nil) != (err == nil) {
		h.t.Fatalf("Check(%s) = %v but Apply = %v", c, checkErr, err)
	}
	return err
}

func (h *harness) mustCmd(c Command) {
	h.t.Helper()
	if err := h.cmd(c); err != nil {
		h.t.Fatalf("%s: %v", c, err)
	}
}

func (h *harness) route(service, route string) RouteStatus {
	h.t.Helper()
	for _, sv := range h.s.Status().Services {
		if sv.Name != service {
			continue
		}
		for _, r := range sv.Routes {
			if r.Name == route {
				return r
			}
		}
	}
	h.t.Fatalf("no route %s/%s", service, route)
	return RouteStatus{}
}

func (h *harness) siteStatus(name string) SiteStatus {
	h.t.Helper()
	for _, s := range h.s.Status().Sites {
		if s.Name == name {
			return s
		}
	}
	h.t.Fatalf("no site %s", name)
	return SiteStatus{}
}

func (h *harness) wantRoute(service, route, active string, epoch uint64, cond Condition) {
	h.t.Helper()
	r := h.route(service, route)
	if r.Active != active || r.Epoch != epoch || r.Condition != cond {
		h.t.Fatalf("route %s/%s = active %s epoch %d condition %s; want %s %d %s (detail %q)",
			service, route, r.Active, r.Epoch, r.Condition, active, epoch, cond, r.Detail)
	}
}

func (h *harness) wantSite(name string, health Health, sync Sync) {
	h.t.Helper()
	s := h.siteStatus(name)
	if s.Health != health || s.Sync != sync {
		h.t.Fatalf("site %s = health %s sync %s; want %s %s", name, s.Health, s.Sync, health, sync)
	}
}

func wantDecisions(t *testing.T, got []Decision, want ...string) {
	t.Helper()
	var g []string
	for _, d := range got {
		for _, m := range d.Moves {
			g = append(g, d.Service+"/"+m.Route+" "+string(m.Kind)+" "+m.From+"->"+m.To)
		}
	}
	if !slices.Equal(g, want) {
		t.Fatalf("decisions = %q; want %q", g, want)
	}
}

func wantErr(t *testing.T, err error, target error, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil; want %q", text)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q does not wrap %v", err, target)
	}
	if text != "" && err.Error() != text {
		t.Fatalf("error =\n  %s\nwant\n  %s", err, text)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
