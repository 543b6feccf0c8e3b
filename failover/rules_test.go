package failover

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Spec)
		want   []string // each must appear in the error
	}{
		{"valid", func(*Spec) {}, nil},
		{"unknown site in route", func(sp *Spec) {
			sp.Services[0].Routes = append(sp.Services[0].Routes, RouteSpec{Name: "eu", Sites: []string{"london", "paris"}})
		}, []string{`services.cas.routes.eu.sites[1]: unknown site "paris"`}},
		{"duplicate site in route", func(sp *Spec) { sp.Services[0].Routes[0].Sites = []string{"dallas", "dallas"} },
			[]string{`services.cas.routes.default.sites[1]: duplicate site "dallas"`}},
		{"empty route", func(sp *Spec) { sp.Services[0].Routes[0].Sites = nil },
			[]string{`services.cas.routes.default.sites: at least one site is required`}},
		{"no routes", func(sp *Spec) { sp.Services[0].Routes = nil }, []string{`services.cas.routes: at least one route`}},
		{"duplicate route", func(sp *Spec) { sp.Services[0].Routes = append(sp.Services[0].Routes, sp.Services[0].Routes[0]) },
			[]string{`services.cas.routes[1].name: duplicate route "default"`}},
		{"duplicate site", func(sp *Spec) { sp.Sites = append(sp.Sites, SiteSpec{Name: "dallas", Endpoints: eps("x")}) },
			[]string{`sites[3].name: duplicate site "dallas"`}},
		{"site without endpoints", func(sp *Spec) { sp.Sites[1].Endpoints = nil },
			[]string{`sites.losangeles.endpoints: at least one endpoint is required`}},
		{"duplicate endpoint", func(sp *Spec) { sp.Sites[0].Endpoints = []Endpoint{{"a", "192.0.2.1"}, {"a", "192.0.2.2"}} },
			[]string{`sites.dallas.endpoints[1].name: duplicate endpoint "a"`}},
		{"endpoint without name or address", func(sp *Spec) { sp.Sites[0].Endpoints = []Endpoint{{Address: "192.0.2.1"}, {Name: "b"}} },
			[]string{`sites.dallas.endpoints[0].name: empty name`, `sites.dallas.endpoints[1].address: empty address`}},
		{"negative max_clock_step", func(sp *Spec) { sp.MaxClockStep = -1 },
			[]string{`max_clock_step: must not be negative, got -1ns`}},
		{"duplicate service", func(sp *Spec) { sp.Services = append(sp.Services, sp.Services[0]) },
			[]string{`services[1].name: duplicate service "cas"`}},
		{"name in two services", func(sp *Spec) {
			sp.Services = append(sp.Services, ServiceSpec{Name: "web", Names: []string{"owa.example.com."},
				Routes: []RouteSpec{{Name: "default", Sites: []string{"dallas"}}}})
		}, []string{`services.web.names[0]: name "owa.example.com." is also in service "cas"`}},
		{"bad mode", func(sp *Spec) { sp.Services[0].Policy.Failover = "sometimes" },
			[]string{`services.cas.policy.failover: must be auto or manual, got "sometimes"`}},
		{"negative hold-down", func(sp *Spec) { sp.Services[0].Policy.DownFor = -time.Second },
			[]string{`services.cas.policy.down_for: must not be negative, got -1s`}},
		{"no nodes, no ttl", func(sp *Spec) { sp.Nodes, sp.VoteTTL = nil, 0 },
			[]string{`nodes: at least one node is required`, `vote_ttl: must be positive, got 0s`}},
		{"duplicate node", func(sp *Spec) { sp.Nodes = []string{"ns1", "ns1"} }, []string{`nodes[1]: duplicate node "ns1"`}},
		{"min quorum above nodes", func(sp *Spec) { sp.MinQuorum = 7 }, []string{`min_quorum: must be between 0 and the number of nodes (6), got 7`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := storySpec(Auto, Auto)
			tt.modify(&sp)
			_, err := New(sp, t0)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted the spec; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNewDefaultsAndDoesNotAlias(t *testing.T) {
	sp := storySpec("", "")
	sp.HistoryLimit = 0
	s, err := New(sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Spec()
	if p := got.Services[0].Policy; p.Failover != Auto || p.Failback != Manual {
		t.Errorf("default policy = %+v; want failover auto, failback manual", p)
	}
	if got.HistoryLimit != DefaultHistoryLimit {
		t.Errorf("history limit = %d", got.HistoryLimit)
	}
	sp.Sites[0].Endpoints[0].Address = "mutated"
	got.Sites[0].Endpoints[1].Name = "mutated too"
	if e := s.Spec().Sites[0].Endpoints; !slices.Equal(e, eps("192.0.2.10", "192.0.2.11")) {
		t.Errorf("state shares memory with a spec: %q", e)
	}
}

func TestVotes(t *testing.T) {
	const ttl = 30 * time.Second
	tests := []struct {
		name   string
		modify func(*Spec)
		events func(h *harness)
		tick   time.Time
		want   Health
	}{
		{"no observation: unknown", nil, func(h *harness) {}, at(time.Minute), HealthUnknown},
		{"one of six down: up", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			h.site("dallas", false, at(time.Second), "ns1")
		}, at(2 * time.Second), Up},
		{"three of six down: unknown, no quorum", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			h.site("dallas", false, at(time.Second), "ns1", "ns2", "ns3")
		}, at(2 * time.Second), HealthUnknown},
		{"four of six down: down", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			h.site("dallas", false, at(time.Second), "ns1", "ns2", "ns3", "ns4")
		}, at(2 * time.Second), Down},
		{"six heard, four down, two only beating: down", nil, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2", "ns3", "ns4")
			h.apply(Beat{Time: at(0), Node: "ns5"})
			h.apply(Beat{Time: at(0), Node: "ns6"})
		}, at(time.Second), Down},
		{"three heard, three down: unknown (quorum 4 of 6 configured)", nil, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2", "ns3")
		}, at(time.Second), HealthUnknown},
		{"cold start, the first node to report: unknown", nil, func(h *harness) {
			h.site("dallas", false, at(0), "ns1")
		}, at(time.Second), HealthUnknown},
		{"three heard, two down, min_quorum 2: down (and a majority of the fresh)", func(sp *Spec) { sp.MinQuorum = 2 }, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2")
			h.site("dallas", true, at(0), "ns3")
		}, at(time.Second), Down},
		{"four heard, two down, min_quorum 2: unknown (no majority of the fresh)", func(sp *Spec) { sp.MinQuorum = 2 }, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2")
			h.site("dallas", true, at(0), "ns3", "ns4")
		}, at(time.Second), HealthUnknown},
		{"min_quorum 5 raises the quorum: four down is unknown", func(sp *Spec) { sp.MinQuorum = 5 }, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			h.site("dallas", false, at(time.Second), "ns1", "ns2", "ns3", "ns4")
		}, at(2 * time.Second), HealthUnknown},
		{"votes count until just before vote_ttl", nil, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2", "ns3", "ns4")
			h.site("dallas", true, at(0), "ns5", "ns6")
			h.apply(Beat{Time: at(20 * time.Second), Node: "ns5"})
			h.apply(Beat{Time: at(20 * time.Second), Node: "ns6"})
		}, at(ttl - time.Nanosecond), Down},
		{"a node that stops beating stops counting at vote_ttl: two left are no quorum", nil, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2", "ns3", "ns4")
			h.site("dallas", true, at(0), "ns5", "ns6")
			h.apply(Beat{Time: at(20 * time.Second), Node: "ns5"})
			h.apply(Beat{Time: at(20 * time.Second), Node: "ns6"})
		}, at(ttl), HealthUnknown},
		{"a node that stops beating stops counting at vote_ttl: four left decide", nil, func(h *harness) {
			h.site("dallas", false, at(0), "ns1", "ns2")
			h.site("dallas", true, at(0), "ns3", "ns4", "ns5", "ns6")
			for _, n := range nodes6[2:] {
				h.apply(Beat{Time: at(20 * time.Second), Node: n})
			}
		}, at(ttl), Up},
		{"every vote expired: unknown", nil, func(h *harness) {
			h.site("dallas", false, at(0), nodes6...)
		}, at(ttl), HealthUnknown},
		{"a node's verdict is down when any of its checks is", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			for _, n := range nodes6[:4] {
				for _, ep := range []string{"192.0.2.10", "192.0.2.11"} {
					h.apply(Observation{Time: at(time.Second), Node: n, Site: "dallas", Endpoint: ep, Check: "smtp", Reason: "timeout"})
				}
			}
		}, at(2 * time.Second), Down},
		{"site-wide check down by quorum: down", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			for _, n := range nodes6[:4] {
				h.apply(Observation{Time: at(time.Second), Node: n, Site: "dallas", Check: "uplink", Reason: "bgp session down"})
			}
		}, at(2 * time.Second), Down},
		{"site-wide check down by a minority: up", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			for _, n := range nodes6[:3] {
				h.apply(Observation{Time: at(time.Second), Node: n, Site: "dallas", Check: "uplink", Reason: "bgp session down"})
			}
		}, at(2 * time.Second), Up},
		{"one endpoint down, the other up: up", nil, func(h *harness) {
			h.site("dallas", true, at(0), nodes6...)
			h.endpoint("dallas", "192.0.2.10", false, at(time.Second), nodes6...)
		}, at(2 * time.Second), Up},
		{"one endpoint down, the other unknown: unknown", nil, func(h *harness) {
			h.endpoint("dallas", "192.0.2.10", false, at(time.Second), nodes6...)
		}, at(2 * time.Second), HealthUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := storySpec(Auto, Auto)
			sp.VoteTTL = ttl
			if tt.modify != nil {
				tt.modify(&sp)
			}
			h := newHarness(t, sp)
			tt.events(h)
			h.apply(Tick{Time: tt.tick})
			if got := h.siteStatus("dallas").Health; got != tt.want {
				t.Fatalf("dallas health = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	const downFor = 30 * time.Second
	// Every case starts with all three sites up and in sync at 0; "dallas
	// down at 1m" is the usual trigger, so down_for ends at 1m30s.
	down := at(time.Minute)
	tests := []struct {
		name     string
		spec     Spec
		events   func(h *harness)
		decideAt time.Time
		want     []string
		cond     Condition
	}{
		{"auto: just before down_for: nothing", storySpec(Auto, Auto),
			func(h *harness) { h.site("dallas", false, down, nodes6...) },
			down.Add(downFor - time.Nanosecond), nil, Normal},
		{"auto: at down_for: failover", storySpec(Auto, Auto),
			func(h *harness) { h.site("dallas", false, down, nodes6...) },
			down.Add(downFor), []string{"cas/default failover dallas->losangeles"}, Normal},
		{"manual: just before down_for: normal", storySpec(Manual, Auto),
			func(h *harness) { h.site("dallas", false, down, nodes6...) },
			down.Add(downFor - time.Nanosecond), nil, Normal},
		{"manual: at down_for: awaiting_operator, no decision", storySpec(Manual, Auto),
			func(h *harness) { h.site("dallas", false, down, nodes6...) },
			down.Add(downFor), nil, AwaitingOperator},
		{"a minority seeing dallas down moves nothing", storySpec(Auto, Auto),
			func(h *harness) { h.site("dallas", false, down, "ns1", "ns2") },
			down.Add(time.Hour), nil, Normal},
		{"unknown health never fails over", storySpec(Auto, Auto),
			func(h *harness) { h.site("dallas", false, down, "ns1", "ns2", "ns3") },
			down.Add(time.Hour), nil, Normal},
		{"skips a drained site", threeSiteSpec(Auto, Auto),
			func(h *harness) {
				h.mustCmd(Command{Time: at(time.Second), Op: OpDrain, Site: "losangeles"})
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor), []string{"cas/default failover dallas->london"}, Normal},
		{"skips a down site", threeSiteSpec(Auto, Auto),
			func(h *harness) {
				h.site("losangeles", false, at(time.Second), nodes6...)
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor), []string{"cas/default failover dallas->london"}, Normal},
		{"prefers an in-sync target to a resyncing one", threeSiteSpec(Auto, Auto),
			func(h *harness) {
				h.site("losangeles", false, at(time.Second), nodes6...)
				h.site("losangeles", true, at(2*time.Second), nodes6...) // back, resyncing
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor), []string{"cas/default failover dallas->london"}, Normal},
		{"takes a resyncing target when none is in sync", storySpec(Auto, Auto),
			func(h *harness) {
				h.site("losangeles", false, at(time.Second), nodes6...)
				h.site("losangeles", true, at(2*time.Second), nodes6...)
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor), []string{"cas/default failover dallas->losangeles"}, Normal},
		{"all down just before down_for: normal", storySpec(Auto, Auto),
			func(h *harness) {
				h.site("losangeles", false, at(time.Second), nodes6...)
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor - time.Nanosecond), nil, Normal},
		{"all down: keep the active site, all_down", storySpec(Auto, Auto),
			func(h *harness) {
				h.site("losangeles", false, at(time.Second), nodes6...)
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor), nil, AllDown},
		{"all down, manual: all_down", storySpec(Manual, Manual),
			func(h *harness) {
				h.site("losangeles", false, at(time.Second), nodes6...)
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(time.Hour), nil, AllDown},
		{"the other site drained: all_down", storySpec(Auto, Auto),
			func(h *harness) {
				h.mustCmd(Command{Time: at(time.Second), Op: OpDrain, Site: "losangeles"})
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(downFor), nil, AllDown},
		{"frozen: nothing, frozen", storySpec(Auto, Auto),
			func(h *harness) {
				h.mustCmd(Command{Time: at(time.Second), Op: OpFreeze, Actor: "bob"})
				h.site("dallas", false, down, nodes6...)
			},
			down.Add(time.Hour), nil, Frozen},
		{"thawed: failover", storySpec(Auto, Auto),
			func(h *harness) {
				h.mustCmd(Command{Time: at(time.Second), Op: OpFreeze})
				h.site("dallas", false, down, nodes6...)
				h.mustCmd(Command{Time: down.Add(time.Hour), Op: OpThaw})
			},
			down.Add(time.Hour), []string{"cas/default failover dallas->losangeles"}, Normal},
		{"failover manual, fail-back auto: a down site still waits for the operator", storySpec(Manual, Auto),
			func(h *harness) { h.site("dallas", false, down, nodes6...) },
			down.Add(time.Hour), nil, AwaitingOperator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.spec)
			h.allUp(at(0))
			tt.events(h)
			got := h.decide(tt.decideAt)
			wantDecisions(t, got, tt.want...)
			if c := h.route("cas", "default").Condition; c != tt.cond {
				t.Fatalf("condition = %s; want %s", c, tt.cond)
			}
			for _, d := range got {
				if d.Epoch != 0 || !d.Time.Equal(tt.decideAt) {
					t.Fatalf("decision %+v: want epoch 0 at %s", d, tt.decideAt)
				}
				if res := h.apply(d); res.Ignored != "" {
					t.Fatalf("decision ignored: %s", res.Ignored)
				}
			}
			if len(got) > 0 {
				if r := h.route("cas", "default"); r.Epoch != 1 || r.Active != got[0].Moves[0].To {
					t.Fatalf("after the decision: %+v", r)
				}
			}
		})
	}
}

func TestDecideFailback(t *testing.T) {
	const stableFor = 5 * time.Minute
	// Dallas fails at 1m, the service moves at 1m30s, Dallas is back at 10m
	// (resyncing) and in sync at 20m.
	setup := func(t *testing.T, failback Mode) *harness {
		h := newHarness(t, storySpec(Auto, failback))
		h.allUp(at(0))
		h.site("dallas", false, at(time.Minute), nodes6...)
		wantDecisions(t, h.step(at(90*time.Second)), "cas/default failover dallas->losangeles")
		h.site("dallas", true, at(10*time.Minute), nodes6...)
		return h
	}
	t.Run("not in sync: never", func(t *testing.T) {
		h := setup(t, Auto)
		wantDecisions(t, h.decide(at(10*time.Hour)))
		h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	})
	t.Run("in sync: just before stable_for", func(t *testing.T) {
		h := setup(t, Auto)
		h.sync("dallas", true, "lag=0", at(20*time.Minute), nodes6...)
		wantDecisions(t, h.decide(at(20*time.Minute).Add(stableFor-time.Nanosecond)))
	})
	t.Run("in sync: at stable_for", func(t *testing.T) {
		h := setup(t, Auto)
		h.sync("dallas", true, "lag=0", at(20*time.Minute), nodes6...)
		d := h.decide(at(20 * time.Minute).Add(stableFor))
		wantDecisions(t, d, "cas/default failback losangeles->dallas")
		if d[0].Epoch != 1 || d[0].Moves[0].Reason != "dallas up and in_sync for 5m0s (stable_for 5m0s)" {
			t.Fatalf("decision = %+v", d[0])
		}
	})
	t.Run("fail-back manual: waits for promote", func(t *testing.T) {
		h := setup(t, Manual)
		h.sync("dallas", true, "lag=0", at(20*time.Minute), nodes6...)
		wantDecisions(t, h.decide(at(10*time.Hour)))
		if d := h.route("cas", "default").Detail; d != "dallas is up and in_sync: fail-back is manual, run promote dallas" {
			t.Fatalf("detail = %q", d)
		}
	})
	t.Run("health flap restarts stable_for", func(t *testing.T) {
		h := setup(t, Auto)
		h.sync("dallas", true, "lag=0", at(20*time.Minute), nodes6...)
		h.site("dallas", false, at(22*time.Minute), "ns1", "ns2", "ns3") // split: unknown
		h.site("dallas", true, at(23*time.Minute), "ns1", "ns2", "ns3")  // up again at 23m
		wantDecisions(t, h.decide(at(28*time.Minute-time.Nanosecond)))
		wantDecisions(t, h.decide(at(28*time.Minute)), "cas/default failback losangeles->dallas")
	})
}

func TestMinInterval(t *testing.T) {
	sp := threeSiteSpec(Auto, Auto)
	h := newHarness(t, sp)
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.step(at(90*time.Second)), "cas/default failover dallas->losangeles")
	// Los Angeles fails 1 s later; down_for is over at 2m1s but min_interval
	// (1m from 1m30s) holds the next decision until 2m30s.
	h.site("losangeles", false, at(91*time.Second), nodes6...)
	wantDecisions(t, h.step(at(150*time.Second-time.Nanosecond)))
	wantDecisions(t, h.step(at(150*time.Second)), "cas/default failover losangeles->london")
	h.wantRoute("cas", "default", "london", 2, FailedOver)

	// A command counts as a change too.
	h2 := newHarness(t, sp)
	h2.allUp(at(0))
	h2.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
	h2.site("losangeles", false, at(time.Minute), nodes6...)
	wantDecisions(t, h2.decide(at(2*time.Minute-time.Nanosecond)))
	// (dallas is not yet stable for stable_for: this is a failover to it.)
	wantDecisions(t, h2.decide(at(2*time.Minute)), "cas/default failover losangeles->dallas")
}

func TestDecisionEpochAndRevalidation(t *testing.T) {
	setup := func(t *testing.T) (*harness, []Decision) {
		h := newHarness(t, threeSiteSpec(Auto, Auto))
		h.allUp(at(0))
		h.site("dallas", false, at(time.Minute), nodes6...)
		d := h.decide(at(90 * time.Second))
		wantDecisions(t, d, "cas/default failover dallas->losangeles")
		return h, d
	}
	t.Run("a newer command makes the decision stale", func(t *testing.T) {
		h, d := setup(t)
		h.mustCmd(Command{Op: OpFailover, Service: "cas", Site: "london"})
		before, _ := MarshalSnapshot(h.s)
		res := h.apply(d[0])
		if res.Ignored != "stale decision: epoch 0, service cas is at epoch 1" {
			t.Fatalf("ignored = %q", res.Ignored)
		}
		h.wantRoute("cas", "default", "london", 1, FailedOver)
		after, _ := MarshalSnapshot(h.s)
		if string(before) != string(after) {
			t.Fatal("a stale decision changed the state")
		}
	})
	t.Run("a decision applied twice: the second is stale", func(t *testing.T) {
		h, d := setup(t)
		h.apply(d[0])
		if res := h.apply(d[0]); !strings.HasPrefix(res.Ignored, "stale decision") {
			t.Fatalf("ignored = %q", res.Ignored)
		}
		h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	})
	t.Run("the target went down before the decision applied", func(t *testing.T) {
		h, d := setup(t)
		h.site("losangeles", false, at(91*time.Second), nodes6...)
		res := h.apply(d[0])
		if res.Ignored != "decision no longer valid: route cas/default failover dallas -> losangeles" {
			t.Fatalf("ignored = %q", res.Ignored)
		}
		h.wantRoute("cas", "default", "dallas", 0, Normal)
	})
	t.Run("frozen before the decision applied", func(t *testing.T) {
		h, d := setup(t)
		h.mustCmd(Command{Op: OpFreeze})
		if res := h.apply(d[0]); res.Ignored != "decision while frozen" {
			t.Fatalf("ignored = %q", res.Ignored)
		}
	})
	t.Run("a forged decision that Decide would not make", func(t *testing.T) {
		h := newHarness(t, threeSiteSpec(Auto, Auto))
		h.allUp(at(0))
		res := h.apply(Decision{Time: at(time.Minute), Service: "cas", Moves: []Move{{Route: "default", From: "dallas", To: "london", Kind: MoveFailover}}})
		if !strings.HasPrefix(res.Ignored, "decision no longer valid") {
			t.Fatalf("ignored = %q", res.Ignored)
		}
	})
	t.Run("Decide refuses a view that may be stale", func(t *testing.T) {
		sp := storySpec(Auto, Auto)
		sp.VoteTTL = time.Minute
		h := newHarness(t, sp)
		h.allUp(at(0))
		h.site("dallas", false, at(10*time.Second), nodes6...)
		if got := h.s.ViewValidUntil(); !got.Equal(at(70 * time.Second)) {
			t.Fatalf("valid until %s", got)
		}
		// Without a tick the votes look fresh, but they expire at 1m10s.
		if d := Decide(h.s, at(70*time.Second)); d != nil {
			t.Fatalf("Decide on a stale view = %+v", d)
		}
		if d := Decide(h.s, at(70*time.Second-time.Nanosecond)); len(d) != 1 {
			t.Fatalf("Decide within the view = %+v", d)
		}
	})
}

func TestDecisionMovesSeveralRoutesInOneEpoch(t *testing.T) {
	sp := threeSiteSpec(Auto, Auto)
	sp.Services[0].Routes = []RouteSpec{
		{Name: "us", Sites: []string{"dallas", "losangeles"}},
		{Name: "eu", Sites: []string{"london", "dallas"}},
		{Name: "asia", Sites: []string{"dallas", "london"}},
	}
	h := newHarness(t, sp)
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.step(at(90*time.Second)),
		"cas/asia failover dallas->london", "cas/us failover dallas->losangeles")
	h.wantRoute("cas", "us", "losangeles", 1, FailedOver)
	h.wantRoute("cas", "asia", "london", 1, FailedOver)
	h.wantRoute("cas", "eu", "london", 0, Normal)
	if st := h.s.Status(); st.Services[0].Epoch != 1 {
		t.Fatalf("service epoch = %d", st.Services[0].Epoch)
	}
}

func TestDrainedActiveSite(t *testing.T) {
	for _, mode := range []Mode{Auto, Manual} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, storySpec(mode, Manual))
			h.allUp(at(0))
			h.site("losangeles", false, at(time.Second), nodes6...)
			// Forced drain with nowhere to go: dallas keeps serving, stranded.
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas", Force: true, Reason: "rack work"})
			h.wantRoute("cas", "default", "dallas", 0, Stranded)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.sync("losangeles", true, "lag=0", at(2*time.Minute), nodes6...)
			if mode == Auto {
				wantDecisions(t, h.step(at(3*time.Minute)), "cas/default drain dallas->losangeles")
				h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
			} else {
				wantDecisions(t, h.step(at(3*time.Minute)))
				h.wantRoute("cas", "default", "dallas", 0, AwaitingOperator)
			}
		})
	}
}

func TestSyncRules(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Spec)
		events func(h *harness)
		site   string
		health Health
		want   Sync
	}{
		{"standby down: resyncing at once", nil, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
		}, "losangeles", Down, Resyncing},
		{"standby back up, no verdict: resyncing", nil, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
		}, "losangeles", Up, Resyncing},
		{"verdicts from before the loss do not count", nil, func(h *harness) {
			h.sync("losangeles", true, "lag=0", at(50*time.Second), nodes6...)
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
		}, "losangeles", Up, Resyncing},
		{"a quorum of fresh in-sync verdicts: in_sync", nil, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.sync("losangeles", true, "lag=0", at(3*time.Minute), nodes6[:4]...)
		}, "losangeles", Up, InSync},
		{"a minority of in-sync verdicts: resyncing", nil, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.sync("losangeles", true, "lag=0", at(3*time.Minute), nodes6[:3]...)
		}, "losangeles", Up, Resyncing},
		{"in-sync verdicts while still down: resyncing", nil, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.sync("losangeles", true, "lag=0", at(2*time.Minute), nodes6...)
		}, "losangeles", Down, Resyncing},
		{"active site down, not replaced: in_sync", func(sp *Spec) { sp.Services[0].Policy.Failover = Manual }, func(h *harness) {
			h.site("dallas", false, at(time.Minute), nodes6...)
			h.apply(Tick{Time: at(time.Hour)})
			h.site("dallas", true, at(2*time.Hour), nodes6...)
		}, "dallas", Up, InSync},
		{"active site replaced while down: resyncing", func(sp *Spec) { sp.Services[0].Policy.Failover = Manual }, func(h *harness) {
			h.site("dallas", false, at(time.Minute), nodes6...)
			h.mustCmd(Command{Time: at(time.Hour), Op: OpFailover, Service: "cas", Site: "losangeles"})
			h.site("dallas", true, at(2*time.Hour), nodes6...)
		}, "dallas", Up, Resyncing},
		{"active site moved away while up (drain): in_sync", nil, func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas"})
		}, "dallas", Up, InSync},
		{"a site made active is in_sync", nil, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.mustCmd(Command{Time: at(3 * time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles", Force: true, Reason: "test"})
		}, "losangeles", Up, InSync},
		{"standby: a quorum says not in sync: resyncing", nil, func(h *harness) {
			h.sync("losangeles", false, "lag=900s", at(time.Minute), nodes6[:4]...)
		}, "losangeles", Up, Resyncing},
		{"standby: a minority says not in sync: in_sync", nil, func(h *harness) {
			h.sync("losangeles", false, "lag=900s", at(time.Minute), nodes6[:3]...)
		}, "losangeles", Up, InSync},
		{"active: a quorum says not in sync: in_sync", nil, func(h *harness) {
			h.sync("dallas", false, "lag=900s", at(time.Minute), nodes6...)
		}, "dallas", Up, InSync},
		{"no sync check: unknown at start even when healthy", func(sp *Spec) { sp.Sites[1].SyncCheck = "" }, func(h *harness) {
		}, "losangeles", Up, SyncUnknown},
		{"no sync check: resyncing after an outage", func(sp *Spec) { sp.Sites[1].SyncCheck = "" }, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.apply(Tick{Time: at(10 * time.Hour)})
		}, "losangeles", Up, Resyncing},
		{"no sync check: mark-synced", func(sp *Spec) { sp.Sites[1].SyncCheck = "" }, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.mustCmd(Command{Time: at(3 * time.Minute), Op: OpMarkSynced, Site: "losangeles", Actor: "alice"})
		}, "losangeles", Up, InSync},
		{"no sync check, trust health: in_sync when up", func(sp *Spec) {
			sp.Sites[1].SyncCheck = ""
			sp.TrustHealthWithoutSync = true
		}, func(h *harness) {
			h.site("losangeles", false, at(time.Minute), nodes6...)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
		}, "losangeles", Up, InSync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := storySpec(Auto, Manual)
			sp.Services[0].Policy.DownFor = time.Hour * 100 // nothing moves by itself here
			if tt.modify != nil {
				tt.modify(&sp)
			}
			h := newHarness(t, sp)
			for _, s := range h.s.spec.Sites {
				h.site(s.Name, true, at(0), nodes6...)
				if s.SyncCheck != "" {
					h.sync(s.Name, true, "lag=0", at(0), nodes6...)
				}
			}
			tt.events(h)
			h.wantSite(tt.site, tt.health, tt.want)
		})
	}
}

func TestAnswer(t *testing.T) {
	h := newHarness(t, storySpec(Auto, Auto))
	a, ok := h.s.Answer("cas", "default")
	if !ok || a.Site != "dallas" || !slices.Equal(a.Endpoints, eps("192.0.2.10", "192.0.2.11")) || a.FailOpen {
		t.Fatalf("initial answer (health unknown) = %+v", a)
	}
	h.allUp(at(0))
	h.endpoint("dallas", "192.0.2.11", false, at(time.Second), nodes6...)
	a, _ = h.s.Answer("cas", "default")
	if !slices.Equal(a.Endpoints, eps("192.0.2.10")) || a.FailOpen {
		t.Fatalf("answer with one endpoint down = %+v", a)
	}
	// A minority seeing the other endpoint down changes nothing.
	h.endpoint("dallas", "192.0.2.10", false, at(2*time.Second), "ns1", "ns2", "ns3")
	if b, _ := h.s.Answer("cas", "default"); !slices.Equal(b.Endpoints, a.Endpoints) {
		t.Fatalf("answer after a minority vote = %+v", b)
	}
	h.endpoint("dallas", "192.0.2.10", false, at(3*time.Second), "ns4")
	a, _ = h.s.Answer("cas", "default")
	if !a.FailOpen || !slices.Equal(a.Endpoints, eps("192.0.2.10", "192.0.2.11")) {
		t.Fatalf("answer with every endpoint down = %+v", a)
	}
	a.Endpoints[0].Address = "mutated"
	if b, _ := h.s.Answer("cas", "default"); b.Endpoints[0].Address != "192.0.2.10" {
		t.Fatal("an answer shares memory with the state")
	}
	if _, ok := h.s.Answer("cas", "eu"); ok {
		t.Fatal("answer for an unknown route")
	}
	if _, ok := h.s.Answer("web", "default"); ok {
		t.Fatal("answer for an unknown service")
	}
	if all := h.s.Answers(); len(all) != 1 || all[0].Service != "cas" {
		t.Fatalf("answers = %+v", all)
	}
}

func TestApplyRoutingAndClock(t *testing.T) {
	h := newHarness(t, storySpec(Auto, Auto))
	res := h.apply(Observation{Time: at(time.Minute), Node: "ns1", Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: true})
	if res.Routing || h.s.Now() != at(time.Minute) {
		t.Fatalf("first vote: %+v at %s", res, h.s.Now())
	}
	// ns1 alone is a quorum of the one fresh node: the endpoint is up.
	h.apply(Tick{Time: at(2 * time.Minute)})
	// An event stamped earlier does not move the clock back.
	h.apply(Beat{Time: at(time.Second), Node: "ns2"})
	if h.s.Now() != at(2*time.Minute) {
		t.Fatalf("clock went back to %s", h.s.Now())
	}
	if st := h.s.Status(); st.Nodes[1].LastSeen != at(2*time.Minute) {
		t.Fatalf("late beat stamped %s", st.Nodes[1].LastSeen)
	}
	for _, bad := range []Event{
		Observation{Time: at(3 * time.Minute), Node: "ns9", Site: "dallas", Check: "https"},
		Observation{Time: at(3 * time.Minute), Node: "ns1", Site: "paris", Check: "https"},
		Observation{Time: at(3 * time.Minute), Node: "ns1", Site: "dallas", Endpoint: "10.0.0.1", Check: "https"},
		Observation{Time: at(3 * time.Minute), Node: "ns1", Site: "dallas"},
		SyncVerdict{Time: at(3 * time.Minute), Node: "ns1", Site: "dallas", Check: "other"},
		Beat{Time: at(3 * time.Minute), Node: ""},
		Decision{Time: at(3 * time.Minute), Service: "web"},
		Decision{Time: at(3 * time.Minute), Service: "cas"},
		Decision{Time: at(3 * time.Minute), Service: "cas", Moves: []Move{{Route: "eu"}}},
		Command{Time: at(3 * time.Minute), Op: "reboot"},
		nil,
	} {
		before, _ := MarshalSnapshot(h.s)
		if _, err := Apply(h.s, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Apply(%#v) = %v; want an invalid error", bad, err)
		}
		if after, _ := MarshalSnapshot(h.s); string(after) != string(before) {
			t.Errorf("Apply(%#v) changed the state", bad)
		}
	}
	res = h.apply(Unknown{K: 0x90, Payload: []byte(`{}`)})
	if res.Ignored == "" {
		t.Fatal("unknown optional event not reported as ignored")
	}
}
