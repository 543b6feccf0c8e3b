package failover

import (
	"bytes"
	"testing"
	"time"
)

// twoServiceSpec: cas on [dallas, losangeles] and web on [dallas, london,
// losangeles], both failover auto, fail-back as given, stable_for as given.
func twoServiceSpec(failback Mode, stableFor time.Duration) Spec {
	sp := threeSiteSpec(Auto, failback)
	pol := sp.Services[0].Policy
	pol.StableFor = stableFor
	sp.Services[0].Policy = pol
	sp.Services = append(sp.Services, ServiceSpec{
		Name:   "web",
		Names:  []string{"www.example.com."},
		Routes: []RouteSpec{{Name: "us", Sites: []string{"dallas", "london", "losangeles"}}},
		Policy: pol,
	})
	sp.Services[0].Routes[0].Sites = []string{"dallas", "losangeles"}
	return sp
}

// decideBatch decides at when without changing the state (checked against
// its snapshot), then applies every decision in order, as the leader's one
// log entry does, and fails if Apply ignores any.
func (h *harness) decideBatch(when time.Time) []Decision {
	h.t.Helper()
	h.apply(Tick{Time: when})
	before, err := MarshalSnapshot(h.s)
	if err != nil {
		h.t.Fatal(err)
	}
	ds := Decide(h.s, when)
	if after, _ := MarshalSnapshot(h.s); !bytes.Equal(before, after) {
		h.t.Fatalf("Decide changed the state")
	}
	for _, d := range ds {
		if res := h.apply(d); res.Ignored != "" {
			h.t.Fatalf("decision %+v ignored: %s", d, res.Ignored)
		}
	}
	return ds
}

// TestDecideServicesInteract is the minimal sequence the property tests
// found (seed 404 at 200k steps): dallas, active for cas and web, is drained
// while no other site is up (forced: both routes stranded); then losangeles
// and london come up, neither known in sync. cas's only target is
// losangeles (up, sync unknown); web's first fallback is london. Once cas
// is on losangeles, losangeles is in_sync (an active site is the source of
// truth), and a route moves to an in_sync site before any other: web's
// decision must be decided after cas's is applied, to losangeles, or Apply
// ignores it as no longer valid.
func TestDecideServicesInteract(t *testing.T) {
	h := newHarness(t, twoServiceSpec(Manual, 5*time.Minute))
	h.site("dallas", true, at(0), nodes6...)
	h.mustCmd(Command{Time: at(time.Second), Op: OpDrain, Site: "dallas", Force: true, Reason: "maintenance"})
	h.wantRoute("cas", "default", "dallas", 0, Stranded)
	h.wantRoute("web", "us", "dallas", 0, Stranded)
	h.site("losangeles", true, at(2*time.Minute), nodes6...)
	h.site("london", true, at(2*time.Minute), nodes6...)
	h.wantSite("losangeles", Up, SyncUnknown)
	h.wantSite("london", Up, SyncUnknown)

	ds := h.decideBatch(at(3 * time.Minute))
	wantDecisions(t, ds, "cas/default drain dallas->losangeles", "web/us drain dallas->losangeles")
	if got, want := ds[0].Moves[0].Reason, "dallas is drained; no site up and in_sync: losangeles up but unknown"; got != want {
		t.Fatalf("cas reason = %q; want %q", got, want)
	}
	if got, want := ds[1].Moves[0].Reason, "dallas is drained; no site stable for 5m0s: losangeles up and in_sync for 0s only"; got != want {
		t.Fatalf("web reason = %q; want %q", got, want)
	}
	if ds[0].Epoch != 0 || ds[1].Epoch != 0 {
		t.Fatalf("epochs = %d, %d; want 0, 0", ds[0].Epoch, ds[1].Epoch)
	}
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	h.wantRoute("web", "us", "losangeles", 1, FailedOver)
	h.wantSite("losangeles", Up, InSync)
	if ds := h.decide(at(10 * time.Minute)); len(ds) != 0 {
		t.Fatalf("nothing left to do, Decide = %+v", ds)
	}

	// Applied alone, web's decision is the one a leader must not send
	// without cas's first: Apply ignores it.
	h2 := newHarness(t, twoServiceSpec(Manual, 5*time.Minute))
	h2.site("dallas", true, at(0), nodes6...)
	h2.mustCmd(Command{Time: at(time.Second), Op: OpDrain, Site: "dallas", Force: true, Reason: "maintenance"})
	h2.site("losangeles", true, at(2*time.Minute), nodes6...)
	h2.site("london", true, at(2*time.Minute), nodes6...)
	h2.apply(Tick{Time: at(3 * time.Minute)})
	if res := h2.apply(ds[1]); res.Ignored != "decision no longer valid: route web/us drain dallas -> losangeles" {
		t.Fatalf("web's decision without cas's: Ignored = %q", res.Ignored)
	}
}

// TestDecideFailoverServicesInteract: the same through failover. dallas goes
// down; cas can only go to losangeles (up, resyncing), web's first fallback
// is london; once cas is on losangeles, web follows it there.
func TestDecideFailoverServicesInteract(t *testing.T) {
	h := newHarness(t, twoServiceSpec(Manual, 5*time.Minute))
	for _, s := range []string{"dallas", "losangeles", "london"} {
		h.site(s, true, at(0), nodes6...)
	}
	h.sync("losangeles", false, "copy_queue_length=900", at(0), nodes6...)
	h.wantSite("losangeles", Up, SyncUnknown)
	h.site("dallas", false, at(time.Minute), nodes6...)
	ds := h.decideBatch(at(2 * time.Minute))
	wantDecisions(t, ds, "cas/default failover dallas->losangeles", "web/us failover dallas->losangeles")
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	h.wantRoute("web", "us", "losangeles", 1, FailedOver)
}

// TestDecideFailbackUnlocked: with stable_for 0 a site is a fail-back
// target as soon as it is up and in_sync. web, failed over to dallas,
// prefers losangeles, which is up but resyncing: no fail-back. cas fails
// over from london to losangeles, which makes losangeles in_sync: web's
// fail-back to it belongs to the same Decide, after cas's move.
func TestDecideFailbackUnlocked(t *testing.T) {
	sp := twoServiceSpec(Auto, 0)
	sp.Services[0].Routes[0].Sites = []string{"london", "losangeles"}
	sp.Services[1].Routes[0].Sites = []string{"losangeles", "dallas"}
	h := newHarness(t, sp)
	for _, s := range []string{"dallas", "losangeles", "london"} {
		h.site(s, true, at(0), nodes6...)
	}
	// web leaves losangeles, which then comes back resyncing.
	h.site("losangeles", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.decideBatch(at(2*time.Minute)), "web/us failover losangeles->dallas")
	h.site("losangeles", true, at(3*time.Minute), nodes6...)
	h.wantSite("losangeles", Up, Resyncing)
	if ds := h.decide(at(4 * time.Minute)); len(ds) != 0 {
		t.Fatalf("losangeles resyncing: Decide = %+v", ds)
	}
	h.site("london", false, at(5*time.Minute), nodes6...)
	ds := h.decideBatch(at(6 * time.Minute))
	wantDecisions(t, ds, "cas/default failover london->losangeles", "web/us failback dallas->losangeles")
	if got, want := ds[1].Moves[0].Reason, "losangeles up and in_sync for 0s (stable_for 0s)"; got != want {
		t.Fatalf("web reason = %q; want %q", got, want)
	}
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	h.wantRoute("web", "us", "losangeles", 2, Normal)
}

// TestDecideClockStep: a now further ahead of the state than max_clock_step
// counts as the time Apply would apply a decision at (the state's time plus
// max_clock_step), so Decide proposes nothing that Apply would refuse for a
// down_for not yet elapsed at that time.
func TestDecideClockStep(t *testing.T) {
	sp := storySpec(Auto, Manual)
	sp.Services[0].Policy.DownFor = 150 * time.Minute
	sp.MaxClockStep = time.Hour
	h := newHarness(t, sp)
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	h.apply(Tick{Time: at(time.Hour)})
	// At +3h dallas would have been down 2h59m; an event stamped +3h is
	// applied at +2h, when it has been down 1h59m only.
	if ds := Decide(h.s, at(3*time.Hour)); len(ds) != 0 {
		t.Fatalf("Decide at +3h on a state at +1h = %+v; want none", ds)
	}
	h.apply(Tick{Time: at(2 * time.Hour)})
	ds := Decide(h.s, at(3*time.Hour))
	if len(ds) != 1 || !ds[0].Time.Equal(at(3*time.Hour)) {
		t.Fatalf("Decide at +3h on a state at +2h = %+v; want one decision at +3h", ds)
	}
	if res := h.apply(ds[0]); res.Ignored != "" || res.ClockClamped != nil {
		t.Fatalf("decision applied: ignored %q, clamped %v", res.Ignored, res.ClockClamped)
	}
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
}
