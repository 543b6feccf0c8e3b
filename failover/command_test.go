package failover

import (
	"errors"
	"testing"
	"time"
)

func TestCommands(t *testing.T) {
	now := at(time.Hour)
	dallasDown := func(h *harness) { h.site("dallas", false, at(time.Minute), nodes6...) }
	laDown := func(h *harness) { h.site("losangeles", false, at(time.Minute), nodes6...) }
	// two services: cas [dallas, losangeles], web [dallas, london] + eu [london, dallas]
	twoServices := func(sp *Spec) {
		sp.Services = append(sp.Services, ServiceSpec{Name: "web", Names: []string{"www.example.com."},
			Routes: []RouteSpec{{Name: "default", Sites: []string{"dallas", "london"}}, {Name: "eu", Sites: []string{"london", "dallas"}}}})
	}
	type route struct {
		service, route, active string
		epoch                  uint64
	}
	tests := []struct {
		name    string
		modify  func(*Spec)
		events  func(h *harness)
		cmd     Command
		target  error     // ErrInvalid, ErrRefused or nil
		err     string    // exact error text
		about   [2]string // the refusal's CommandError Route and Site, when set
		routes  []route
		history string // What of the last history entry; "" to skip
		check   func(t *testing.T, h *harness)
	}{
		// promote
		{name: "promote the first preference back", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
		}, cmd: Command{Op: OpPromote, Site: "dallas"},
			routes: []route{{"cas", "default", "dallas", 2}}, history: "promote"},
		{name: "promote a second preference while the first is down", events: dallasDown,
			cmd:    Command{Op: OpPromote, Site: "losangeles"},
			routes: []route{{"cas", "default", "losangeles", 1}}},
		{name: "promote a second preference while the first is up", cmd: Command{Op: OpPromote, Site: "losangeles"},
			target: ErrRefused,
			err:    "promote losangeles refused: losangeles is not the first preference of any route, and on every route that lists it a site preferred to it is neither down nor drained (use failover --to)"},
		{name: "promote: moves every route where the site is first", modify: twoServices, events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas"})
			h.mustCmd(Command{Time: at(2 * time.Minute), Op: OpUndrain, Site: "dallas"})
		}, cmd: Command{Op: OpPromote, Site: "dallas"},
			routes: []route{{"cas", "default", "dallas", 2}, {"web", "default", "dallas", 2}, {"web", "eu", "london", 0}}},
		{name: "promote an already active site: accepted, no change", cmd: Command{Op: OpPromote, Site: "dallas"},
			routes: []route{{"cas", "default", "dallas", 0}}, history: "promote",
			check: func(t *testing.T, h *harness) {
				if e := h.s.history[len(h.s.history)-1]; e.Note != "no change: already active" {
					t.Fatalf("entry = %+v", e)
				}
			}},
		{name: "promote a down site", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			dallasDown(h)
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused,
			err: `promote dallas refused: dallas is down: health check "https" on 192.0.2.10 reports down (connect: connection refused)`},
		{name: "promote a site down by a site-wide check", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			for _, n := range nodes6 {
				h.apply(Observation{Time: at(2 * time.Minute), Node: n, Site: "dallas", Check: "uplink", Reason: "bgp down " + n})
			}
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused,
			err: `promote dallas refused: dallas is down: health check "uplink" reports down (bgp down ns1)`},
		{name: "promote a site of unknown health", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			h.site("dallas", false, at(2*time.Minute), "ns1", "ns2", "ns3")
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused,
			err: `promote dallas refused: dallas health is unknown (no quorum of 4 among 6 fresh nodes)`},
		{name: "promote a drained site", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas"})
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused, err: `promote dallas refused: dallas is drained`},
		{name: "promote a resyncing site with no verdict", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			dallasDown(h)
			h.site("dallas", true, at(2*time.Minute), nodes6...)
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused,
			err: `promote dallas refused: sync check "replication" has not reported since dallas became resyncing at 2025-03-01T12:01:00Z`},
		{name: "promote a resyncing site, minority in sync", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			dallasDown(h)
			h.site("dallas", true, at(2*time.Minute), nodes6...)
			h.sync("dallas", true, "lag=0", at(3*time.Minute), "ns1", "ns2")
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused,
			err: `promote dallas refused: sync check "replication" reports in_sync from 2 nodes, quorum 4 of 6 fresh nodes`},
		{name: "promote a site with no sync check", modify: func(sp *Spec) { sp.Sites[0].SyncCheck = "" }, events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			dallasDown(h)
			h.site("dallas", true, at(2*time.Minute), nodes6...)
		}, cmd: Command{Op: OpPromote, Site: "dallas"}, target: ErrRefused,
			err: `promote dallas refused: dallas has no sync check and its sync state is resyncing (run mark-synced once its data is in sync)`},
		{name: "promote forced past the sync guard", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles"})
			dallasDown(h)
			h.site("dallas", true, at(2*time.Minute), nodes6...)
		}, cmd: Command{Op: OpPromote, Site: "dallas", Force: true, Reason: "replica verified by hand", Actor: "alice"},
			routes: []route{{"cas", "default", "dallas", 2}}, history: "promote",
			check: func(t *testing.T, h *harness) {
				e := h.s.history[len(h.s.history)-1]
				if !e.Forced || e.Reason != "replica verified by hand" || e.Actor != "alice" {
					t.Fatalf("entry = %+v", e)
				}
			}},
		{name: "promote: force without a reason", cmd: Command{Op: OpPromote, Site: "dallas", Force: true},
			target: ErrInvalid, err: "promote dallas: force needs a reason"},
		{name: "promote: force does not skip syntax", cmd: Command{Op: OpPromote, Site: "paris", Force: true, Reason: "x"},
			target: ErrInvalid, err: `promote paris: unknown site "paris"`},
		{name: "promote: extra field", cmd: Command{Op: OpPromote, Site: "dallas", Service: "cas"},
			target: ErrInvalid, err: `promote cas dallas: promote takes no service`},

		// failover
		{name: "failover to a healthy site", cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles", Reason: "planned"},
			routes: []route{{"cas", "default", "losangeles", 1}}, history: "failover"},
		{name: "failover to a down site", events: laDown, cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles"},
			target: ErrRefused, err: `failover cas --to losangeles refused: losangeles is down: health check "https" on 198.51.100.10 reports down (connect: connection refused)`},
		{name: "failover to a down site, forced", events: laDown,
			cmd:    Command{Op: OpFailover, Service: "cas", Site: "losangeles", Force: true, Reason: "dns test"},
			routes: []route{{"cas", "default", "losangeles", 1}}},
		{name: "failover to a drained site", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "losangeles"})
		}, cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles"},
			target: ErrRefused, err: `failover cas --to losangeles refused: losangeles is drained`},
		{name: "failover to a site of unknown health is allowed", events: func(h *harness) {
			h.site("losangeles", false, at(time.Minute), "ns1", "ns2", "ns3")
		}, cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles"},
			routes: []route{{"cas", "default", "losangeles", 1}}},
		{name: "failover to a resyncing site away from a site that is up", events: func(h *harness) {
			laDown(h)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.sync("losangeles", false, "lag=900s", at(2*time.Minute), "ns1")
		}, cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles"}, target: ErrRefused,
			err: `failover cas --to losangeles refused: sync check "replication" reports not_in_sync (lag=900s), and dallas, active on route cas/default, is not down`},
		{name: "failover to a resyncing site away from a down site", events: func(h *harness) {
			laDown(h)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
			h.site("dallas", false, at(3*time.Minute), nodes6...)
		}, cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles"},
			routes: []route{{"cas", "default", "losangeles", 1}}},
		{name: "failover one route only", modify: twoServices, cmd: Command{Op: OpFailover, Service: "web", Site: "london", Route: "default"},
			routes: []route{{"web", "default", "london", 1}, {"web", "eu", "london", 0}}},
		{name: "failover: unknown route", cmd: Command{Op: OpFailover, Service: "cas", Site: "losangeles", Route: "eu"},
			target: ErrInvalid, err: `failover cas --to losangeles --route eu: service cas has no route "eu"`},
		{name: "failover: site not in the service", cmd: Command{Op: OpFailover, Service: "cas", Site: "london"},
			target: ErrInvalid, err: `failover cas --to london: no route of service cas lists site london`},
		{name: "failover: missing service", cmd: Command{Op: OpFailover, Site: "london"},
			target: ErrInvalid, err: `failover --to london: missing service`},

		// drain / undrain
		{name: "drain the active site moves it", cmd: Command{Op: OpDrain, Site: "dallas", Reason: "rack work"},
			routes: []route{{"cas", "default", "losangeles", 1}},
			check: func(t *testing.T, h *harness) {
				e := h.s.history[len(h.s.history)-2:]
				if e[0].Site != "dallas" || e[0].From != "active" || e[0].To != "drained" ||
					e[1].From != "dallas" || e[1].To != "losangeles" || e[1].Reason != "rack work" {
					t.Fatalf("entries = %+v", e)
				}
				h.wantSite("dallas", Up, InSync)
				if h.siteStatus("dallas").Admin != Drained {
					t.Fatal("not drained")
				}
			}},
		{name: "drain would move to a resyncing site", events: func(h *harness) {
			laDown(h)
			h.site("losangeles", true, at(2*time.Minute), nodes6...)
		}, cmd: Command{Op: OpDrain, Site: "dallas"}, target: ErrRefused, about: [2]string{"cas/default", "losangeles"},
			err: `drain dallas refused: route cas/default would move to losangeles: sync check "replication" has not reported since losangeles became resyncing at 2025-03-01T12:01:00Z`},
		{name: "drain a standby site", cmd: Command{Op: OpDrain, Site: "losangeles"},
			routes: []route{{"cas", "default", "dallas", 0}}, history: "drain"},
		{name: "drain with no other healthy site", events: laDown, cmd: Command{Op: OpDrain, Site: "dallas"},
			target: ErrRefused, about: [2]string{"cas/default", ""}, err: `drain dallas refused: route cas/default would have no healthy undrained site`},
		{name: "drain with no other healthy site, forced", events: laDown,
			cmd:    Command{Op: OpDrain, Site: "dallas", Force: true, Reason: "power work"},
			routes: []route{{"cas", "default", "dallas", 0}}},
		{name: "drain twice: accepted, no change", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas"})
			laDown(h)
		}, cmd: Command{Op: OpDrain, Site: "dallas"}, routes: []route{{"cas", "default", "losangeles", 1}}, history: "drain"},
		{name: "undrain", events: func(h *harness) {
			h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas"})
		}, cmd: Command{Op: OpUndrain, Site: "dallas"}, routes: []route{{"cas", "default", "losangeles", 1}}, history: "undrain",
			check: func(t *testing.T, h *harness) {
				if h.siteStatus("dallas").Admin != AdminActive {
					t.Fatal("still drained")
				}
			}},

		// mode, mark-synced, freeze, thaw
		{name: "mode", cmd: Command{Op: OpMode, Service: "cas", Mode: Auto, Failback: Auto}, history: "mode",
			check: func(t *testing.T, h *harness) {
				e := h.s.history[len(h.s.history)-1]
				if e.From != "failover=manual failback=manual" || e.To != "failover=auto failback=auto" {
					t.Fatalf("entry = %+v", e)
				}
			}},
		{name: "mode: bad value", cmd: Command{Op: OpMode, Service: "cas", Mode: "maybe"},
			target: ErrInvalid, err: `mode cas maybe: mode must be auto or manual, got "maybe"`},
		{name: "mode: missing", cmd: Command{Op: OpMode, Service: "cas"}, target: ErrInvalid, err: `mode cas: missing mode`},
		{name: "mark-synced a down site", events: laDown, cmd: Command{Op: OpMarkSynced, Site: "losangeles"},
			target: ErrRefused, err: `mark-synced losangeles refused: losangeles is down: health check "https" on 198.51.100.10 reports down (connect: connection refused)`},
		{name: "freeze", cmd: Command{Op: OpFreeze, Reason: "incident 42"}, history: "freeze",
			check: func(t *testing.T, h *harness) {
				if !h.s.Frozen() || h.route("cas", "default").Condition != Frozen {
					t.Fatal("not frozen")
				}
			}},
		{name: "thaw", events: func(h *harness) { h.mustCmd(Command{Time: at(time.Minute), Op: OpFreeze}) },
			cmd: Command{Op: OpThaw}, history: "thaw",
			check: func(t *testing.T, h *harness) {
				if h.s.Frozen() || h.route("cas", "default").Condition != Normal {
					t.Fatal("still frozen")
				}
			}},
		{name: "freeze: takes no site", cmd: Command{Op: OpFreeze, Site: "dallas"}, target: ErrInvalid, err: `freeze dallas: freeze takes no site`},
		{name: "unknown op", cmd: Command{Op: "reboot"}, target: ErrInvalid, err: `reboot: unknown command "reboot"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := threeSiteSpec(Manual, Manual)
			sp.Services[0].Routes[0].Sites = []string{"dallas", "losangeles"}
			if tt.modify != nil {
				tt.modify(&sp)
			}
			h := newHarness(t, sp)
			h.allUp(at(0))
			if tt.events != nil {
				tt.events(h)
			}
			h.apply(Tick{Time: now})
			before, _ := MarshalSnapshot(h.s)
			c := tt.cmd
			c.Time = now
			checkErr := Check(h.s, c)
			if after, _ := MarshalSnapshot(h.s); string(after) != string(before) {
				t.Fatal("Check changed the state")
			}
			res, err := Apply(h.s, c)
			if (checkErr == nil) != (err == nil) {
				t.Fatalf("Check = %v, Apply = %v", checkErr, err)
			}
			if tt.target != nil || tt.err != "" {
				wantErr(t, err, tt.target, tt.err)
				wantErr(t, checkErr, tt.target, tt.err)
				var ce *CommandError
				if errors.As(err, &ce) && [2]string{ce.Route, ce.Site} != tt.about {
					t.Errorf("refusal about route %q site %q, want %q", ce.Route, ce.Site, tt.about)
				}
				if after, _ := MarshalSnapshot(h.s); string(after) != string(before) {
					t.Fatal("a rejected command changed the state")
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for _, r := range tt.routes {
				got := h.route(r.service, r.route)
				if got.Active != r.active || got.Epoch != r.epoch {
					t.Errorf("route %s/%s = %s epoch %d; want %s epoch %d", r.service, r.route, got.Active, got.Epoch, r.active, r.epoch)
				}
			}
			if len(res.Entries) == 0 {
				t.Fatal("an accepted command left no history entry")
			}
			if tt.history != "" {
				if e := h.s.history[len(h.s.history)-1]; e.What != tt.history || e.Kind != KindCommandEntry || e.Time != now {
					t.Errorf("last entry = %+v; want %s", e, tt.history)
				}
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}

func TestCommandErrorKinds(t *testing.T) {
	var ce *CommandError
	err := error(&CommandError{Command: "promote dallas", Refused: true, Msg: "x"})
	if !errors.As(err, &ce) || !errors.Is(err, ErrRefused) || errors.Is(err, ErrInvalid) {
		t.Fatal("refused error kinds")
	}
	if got := (Command{Op: OpMode, Service: "cas", Mode: Manual, Failback: Auto}).String(); got != "mode cas manual --failback auto" {
		t.Fatalf("String = %q", got)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	sp := storySpec(Manual, Manual)
	sp.HistoryLimit = 3
	h := newHarness(t, sp)
	for i := range 10 {
		op := OpFreeze
		if i%2 == 1 {
			op = OpThaw
		}
		h.mustCmd(Command{Time: at(time.Duration(i) * time.Second), Op: op})
	}
	hist := h.s.Status().History
	if len(hist) != 3 || hist[0].Seq != 8 || hist[2].Seq != 10 || hist[2].What != "thaw" {
		t.Fatalf("history = %+v", hist)
	}
}
