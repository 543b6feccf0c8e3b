package failover

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The sequences found when the core was tried adversarially (issue 7), each
// as it was found, on the story spec: six voters, down_for 30 s, stable_for
// 5 m, min_interval 1 m.

// resyncingDallas is found sequence 1's start: cas/default = [dallas,
// losangeles, london]; dallas down at 1m, failover to losangeles at 1m30s,
// dallas up again at 2m, resyncing.
func resyncingDallas(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, threeSiteSpec(Auto, Auto))
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.step(at(90*time.Second)), "cas/default failover dallas->losangeles")
	h.site("dallas", true, at(2*time.Minute), nodes6...)
	h.wantSite("dallas", Up, Resyncing)
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	return h
}

// respec applies a spec change at when and checks that it left dallas
// resyncing: promote dallas refused, no fail-back proposed, ever.
func (h *harness) respecKeepsResync(sp Spec, when time.Time) {
	h.t.Helper()
	n, err := Respec(h.s, sp, when)
	if err != nil {
		h.t.Fatalf("Respec: %v", err)
	}
	h.s = n
	h.wantSite("dallas", Up, Resyncing)
	if err := Check(h.s, Command{Time: when, Op: OpPromote, Site: "dallas"}); !errors.Is(err, ErrRefused) {
		h.t.Fatalf("promote dallas after the respec: %v; want refused", err)
	}
	for _, d := range []time.Duration{time.Second, 10 * time.Minute, time.Hour} {
		for _, dec := range h.decide(when.Add(d)) {
			for _, m := range dec.Moves {
				if m.To == "dallas" {
					h.t.Fatalf("Decide at +%s proposes %+v", d, m)
				}
			}
		}
	}
}

func TestFoundRespecNewRouteStartsOnResyncingSite(t *testing.T) {
	h := resyncingDallas(t)
	sp := threeSiteSpec(Auto, Auto)
	sp.Services[0].Routes = append(sp.Services[0].Routes, RouteSpec{Name: "us", Sites: []string{"dallas", "losangeles"}})
	h.respecKeepsResync(sp, at(3*time.Minute))
	// The new route starts where a failover would go, at the service's epoch.
	h.wantRoute("cas", "us", "losangeles", 1, FailedOver)
	r := h.route("cas", "us")
	if !strings.HasPrefix(r.Reason, "configuration changed: new route, dallas cannot start it; no site stable for 5m0s: losangeles up and in_sync for 3m0s only") {
		t.Fatalf("reason = %q", r.Reason)
	}
	e := h.s.history[len(h.s.history)-1]
	if e.Kind != KindConfig || e.Route != "us" || e.To != "losangeles" || e.From != "" || e.Note != "new route" {
		t.Fatalf("history entry = %+v", e)
	}
}

func TestFoundRespecNewServiceStartsOnResyncingSite(t *testing.T) {
	h := resyncingDallas(t)
	sp := threeSiteSpec(Auto, Auto)
	sp.Services = append(sp.Services, ServiceSpec{Name: "web", Names: []string{"www.example.com."},
		Routes: []RouteSpec{{Name: "default", Sites: []string{"dallas", "london"}}}})
	h.respecKeepsResync(sp, at(3*time.Minute))
	h.wantRoute("web", "default", "london", 0, FailedOver)
}

func TestFoundRespecRenamedRouteKeepsItsState(t *testing.T) {
	h := resyncingDallas(t)
	sp := threeSiteSpec(Auto, Auto)
	sp.Services[0].Routes[0].Name = "main"
	h.respecKeepsResync(sp, at(3*time.Minute))
	h.wantRoute("cas", "main", "losangeles", 1, FailedOver)
	r := h.route("cas", "main")
	if !r.Since.Equal(at(90*time.Second)) || !strings.HasPrefix(r.Reason, "dallas down for 30s") {
		t.Fatalf("renamed route = %+v", r)
	}
	e := h.s.history[len(h.s.history)-1]
	if e.Kind != KindConfig || e.Route != "main" || e.Note != "route default renamed to main: it keeps its state" {
		t.Fatalf("history entry = %+v", e)
	}
}

func TestFoundRespecRemovedActiveSiteMovesAsADecision(t *testing.T) {
	// Removing the active losangeles while dallas is still down: london (up,
	// in sync) takes over, not the first undrained site.
	h := newHarness(t, threeSiteSpec(Auto, Auto))
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.step(at(90*time.Second)), "cas/default failover dallas->losangeles")
	sp := threeSiteSpec(Auto, Auto)
	sp.Services[0].Routes[0].Sites = []string{"dallas", "london"}
	n, err := Respec(h.s, sp, at(100*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h.s = n
	h.wantRoute("cas", "default", "london", 2, FailedOver)
	h.wantSite("dallas", Down, Resyncing)
	e := h.s.history[len(h.s.history)-1]
	if e.Kind != KindConfig || e.From != "losangeles" || e.To != "london" || e.Epoch != 2 ||
		e.Reason != "configuration changed: losangeles no longer in route; no site stable for 5m0s: london up and in_sync for 1m40s only" {
		t.Fatalf("history entry = %+v", e)
	}
	if st := h.s.Status(); st.Services[0].Epoch != 2 || st.AnswersVersion <= 0 {
		t.Fatalf("status = %+v", st.Services[0])
	}
}

func TestRespecColdStartKeepsFirstPreference(t *testing.T) {
	// Before any probe nothing is known: a new route starts on its first
	// preference, as New does.
	h := newHarness(t, threeSiteSpec(Auto, Auto))
	sp := threeSiteSpec(Auto, Auto)
	sp.Services[0].Routes = append(sp.Services[0].Routes, RouteSpec{Name: "eu", Sites: []string{"london", "dallas"}})
	n, err := Respec(h.s, sp, at(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h.s = n
	h.wantRoute("cas", "eu", "london", 0, Normal)
	// The history says the configuration changed, and moves nothing.
	if r := h.route("cas", "eu"); r.Reason != "initial" || len(h.s.history) != 1 ||
		h.s.history[0].Kind != KindConfig || h.s.history[0].Reason != "services changed: cas" || h.s.history[0].To != "" {
		t.Fatalf("route %+v, history %+v", r, h.s.history)
	}
}

func TestFoundRespecEpochsNeverGoDown(t *testing.T) {
	h := resyncingDallas(t)
	// cas removed, then added again: it continues from epoch 1.
	sp := threeSiteSpec(Auto, Auto)
	sp.Services[0].Name = "mx"
	n, err := Respec(h.s, sp, at(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	n, err = Respec(n, threeSiteSpec(Auto, Auto), at(4*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	h.s = n
	if st := h.s.Status(); st.Services[0].Name != "cas" || st.Services[0].Epoch != 1 {
		t.Fatalf("cas after removal and return: %+v", st.Services[0])
	}
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	h.wantSite("dallas", Up, Resyncing)
}

// storyVoters is the quorum sequences' setup: all six see every site up at
// 0, vote_ttl 90 s.
func storyVoters(t *testing.T, minQuorum int) *harness {
	t.Helper()
	sp := threeSiteSpec(Auto, Auto)
	sp.VoteTTL = 90 * time.Second
	sp.MinQuorum = minQuorum
	return newHarness(t, sp)
}

func TestFoundQuorumOfOneAtColdStart(t *testing.T) {
	h := storyVoters(t, 0)
	// The first node to report sees dallas down; nobody else reported yet.
	h.site("dallas", false, at(0), "ns1")
	h.site("losangeles", true, at(0), "ns1")
	wantDecisions(t, h.step(at(time.Minute)))
	h.wantSite("dallas", HealthUnknown, InSync)
	h.wantRoute("cas", "default", "dallas", 0, Normal)
	if st := h.s.Status(); st.Quorum != 4 || st.FreshNodes != 1 || st.QuorumWarning != "" {
		t.Fatalf("quorum %d of %d fresh, warning %q", st.Quorum, st.FreshNodes, st.QuorumWarning)
	}
}

func TestFoundQuorumTwoLeftOfSix(t *testing.T) {
	h := storyVoters(t, 0)
	h.allUp(at(0))
	// ns1..ns4 stop beating; ns5 and ns6 see dallas down and keep beating.
	h.site("dallas", false, at(time.Minute), "ns5", "ns6")
	for _, d := range []time.Duration{2 * time.Minute, 3 * time.Minute, time.Hour} {
		for _, n := range []string{"ns5", "ns6"} {
			h.apply(Beat{Time: at(d), Node: n})
		}
		wantDecisions(t, h.step(at(d)))
	}
	h.wantSite("dallas", HealthUnknown, InSync)
	h.wantRoute("cas", "default", "dallas", 0, Normal)
}

func TestFoundQuorumSplitThreeThree(t *testing.T) {
	// Each half of a 3-3 split, fed only its own votes, decides nothing.
	for _, half := range [][]string{{"ns1", "ns2", "ns3"}, {"ns4", "ns5", "ns6"}} {
		h := storyVoters(t, 0)
		h.allUp(at(0))
		h.site("dallas", false, at(2*time.Minute), half...)
		h.site("losangeles", true, at(2*time.Minute), half...)
		wantDecisions(t, h.step(at(3*time.Minute)))
		wantDecisions(t, h.step(at(time.Hour)))
		h.wantRoute("cas", "default", "dallas", 0, Normal)
	}
}

func TestQuorumTwoOfSixDown(t *testing.T) {
	// With 2 of 6 nodes down, the 4 left must agree.
	h := storyVoters(t, 0)
	h.allUp(at(0))
	h.site("losangeles", true, at(2*time.Minute), "ns1", "ns2", "ns3", "ns4") // ns5, ns6 are gone
	h.site("dallas", false, at(2*time.Minute), "ns1", "ns2", "ns3")
	h.site("dallas", true, at(2*time.Minute), "ns4")
	wantDecisions(t, h.step(at(2*time.Minute+10*time.Second)))
	h.wantSite("dallas", HealthUnknown, InSync) // 3 of the 4 left: no quorum
	h.site("dallas", false, at(2*time.Minute+20*time.Second), "ns4")
	wantDecisions(t, h.step(at(2*time.Minute+50*time.Second-time.Nanosecond)))
	wantDecisions(t, h.step(at(2*time.Minute+50*time.Second)), "cas/default failover dallas->losangeles")
}

func TestQuorumLoweredExplicitly(t *testing.T) {
	h := storyVoters(t, 2)
	const want = "min_quorum 2 is below a strict majority of the 6 configured voters (4): 2 nodes that agree, cut off from the others, can fail services over"
	if w := h.s.Status().QuorumWarning; w != want {
		t.Fatalf("warning = %q", w)
	}
	if w := h.s.Spec().QuorumWarning(); w != want {
		t.Fatalf("spec warning = %q", w)
	}
	h.allUp(at(0))
	h.site("dallas", false, at(80*time.Second), "ns5", "ns6")
	h.wantSite("dallas", Up, InSync) // 2 of 6 fresh: a minority of the fresh
	// ns1..ns4 expire at 1m30s: two fresh nodes that agree are a quorum now.
	wantDecisions(t, h.step(at(90*time.Second)))
	h.wantSite("dallas", Down, InSync)
	wantDecisions(t, h.step(at(2*time.Minute-time.Nanosecond)))
	wantDecisions(t, h.step(at(2*time.Minute)), "cas/default failover dallas->losangeles")
	for _, q := range []int{0, 4, 5} {
		sp := storySpec(Auto, Auto)
		sp.MinQuorum = q
		if w := sp.QuorumWarning(); w != "" {
			t.Fatalf("min_quorum %d: warning %q", q, w)
		}
	}
}

func TestFoundFailoverTargetJustBack(t *testing.T) {
	// losangeles active and failing, dallas up and in sync for 1m30s only,
	// london up and stable: london.
	setup := func(t *testing.T) *harness {
		h := newHarness(t, threeSiteSpec(Auto, Manual))
		h.allUp(at(0))
		h.site("dallas", false, at(time.Minute), nodes6...)
		wantDecisions(t, h.step(at(90*time.Second)), "cas/default failover dallas->losangeles")
		h.site("dallas", true, at(2*time.Minute), nodes6...)
		h.sync("dallas", true, "copy_queue_length=0", at(10*time.Minute), nodes6...)
		h.wantSite("dallas", Up, InSync)
		h.site("losangeles", false, at(11*time.Minute), nodes6...)
		return h
	}
	h := setup(t)
	d := h.decide(at(11*time.Minute + 30*time.Second))
	wantDecisions(t, d, "cas/default failover losangeles->london")
	if r := d[0].Moves[0].Reason; r != "losangeles down for 30s (down_for 30s); london stable: up and in_sync for 11m30s (stable_for 5m0s)" {
		t.Fatalf("reason = %q", r)
	}
	// With london gone too, the site that just came back is the fallback,
	// and the reason says so.
	h = setup(t)
	h.site("london", false, at(11*time.Minute), nodes6...)
	d = h.decide(at(11*time.Minute + 30*time.Second))
	wantDecisions(t, d, "cas/default failover losangeles->dallas")
	if r := d[0].Moves[0].Reason; r != "losangeles down for 30s (down_for 30s); no site stable for 5m0s: dallas up and in_sync for 1m30s only" {
		t.Fatalf("reason = %q", r)
	}
}

func TestFoundEverySiteDrained(t *testing.T) {
	h := newHarness(t, storySpec(Auto, Manual))
	h.allUp(at(0))
	h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas"})
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	h.mustCmd(Command{Time: at(2 * time.Minute), Op: OpDrain, Site: "losangeles", Force: true, Reason: "all hands"})
	h.wantRoute("cas", "default", "losangeles", 1, Stranded)
	if d := h.route("cas", "default").Detail; d != "every site of the route is drained: answering with losangeles, which cannot move until a site is undrained" {
		t.Fatalf("detail = %q", d)
	}
	if a, _ := h.s.Answer("cas", "default"); a.Site != "losangeles" || a.Condition != Stranded || a.FailOpen {
		t.Fatalf("answer = %+v", a)
	}
	wantDecisions(t, h.step(at(time.Hour)))
	// Undrain dallas: the route can move again, and does (failover auto).
	h.mustCmd(Command{Time: at(2 * time.Hour), Op: OpUndrain, Site: "dallas"})
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	wantDecisions(t, h.step(at(2*time.Hour)), "cas/default drain losangeles->dallas")
}

func TestFoundTimeFarAhead(t *testing.T) {
	sp := threeSiteSpec(Auto, Auto)
	sp.VoteTTL = 90 * time.Second
	h := newHarness(t, sp)
	h.allUp(at(0))
	// A tick stamped a year ahead moves the clock by max_clock_step only.
	res := h.apply(Tick{Time: at(365 * 24 * time.Hour)})
	if !h.s.Now().Equal(at(time.Hour)) || res.ClockClamped == nil || !errors.Is(res.ClockClamped, ErrClockStep) {
		t.Fatalf("now %s, clamped %v", h.s.Now(), res.ClockClamped)
	}
	if got, want := res.ClockClamped.Error(), "event stamped 2026-03-01T12:00:00Z is 8760h0m0s ahead of the state's clock 2025-03-01T12:00:00Z (max_clock_step 1h0m0s): applied at 2025-03-01T13:00:00Z"; got != want {
		t.Fatalf("error = %q\nwant    %q", got, want)
	}
	// Within the hour the voters speak again (their stamps are clamped up
	// to the state's time), and a failure is decided once the real clock
	// has caught up: an hour lost, not a year.
	for _, n := range nodes6 {
		h.apply(Beat{Time: at(2 * time.Minute), Node: n})
	}
	h.site("dallas", false, at(3*time.Minute), nodes6...)
	h.site("losangeles", true, at(3*time.Minute), nodes6...)
	h.sync("losangeles", true, "lag=0", at(3*time.Minute), nodes6...)
	h.apply(Tick{Time: at(time.Hour + 30*time.Second)})
	for _, n := range nodes6 {
		h.apply(Beat{Time: at(time.Hour + 30*time.Second), Node: n})
	}
	wantDecisions(t, h.step(at(time.Hour+30*time.Second)), "cas/default failover dallas->losangeles")

	// A year-10000 tick is accepted, clamped and encodable.
	year10000 := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	if res := h.apply(Tick{Time: year10000}); res.ClockClamped == nil {
		t.Fatal("no clamp")
	}
	if _, err := MarshalSnapshot(h.s); err != nil {
		t.Fatal(err)
	}
	// Near the end of year 9999 (a huge max_clock_step), the clock stops at
	// the last encodable instant.
	sp.MaxClockStep = 1<<63 - 1
	big := newHarness(t, sp)
	for range 40 {
		big.apply(Tick{Time: year10000})
	}
	if !big.s.Now().Equal(maxTime) {
		t.Fatalf("now = %s", big.s.Now())
	}
	b, err := MarshalSnapshot(big.s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalSnapshot(b); err != nil {
		t.Fatal(err)
	}
	if _, err := New(sp, year10000); err == nil {
		t.Fatal("New at year 10000 accepted")
	}
	if _, err := Respec(big.s, sp, year10000); err == nil {
		t.Fatal("Respec at year 10000 accepted")
	}
	if _, err := Apply(h.s, Beat{Time: at(0), Node: "ns1", Clock: year10000}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("beat with a year-10000 clock: %v", err)
	}
}

func TestRespecRemovedSiteComesBackUnsynced(t *testing.T) {
	// Removing resyncing dallas from the config and adding it back does not
	// skip its resync: it comes back unknown and needs its sync check.
	h := resyncingDallas(t)
	sp := threeSiteSpec(Auto, Auto)
	sp.Sites = sp.Sites[1:]
	sp.Services[0].Routes[0].Sites = []string{"losangeles", "london"}
	n, err := Respec(h.s, sp, at(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n, err = Respec(n, threeSiteSpec(Auto, Auto), at(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	h.s = n
	h.wantSite("dallas", HealthUnknown, SyncUnknown)
	h.site("dallas", true, at(5*time.Minute), nodes6...) // the nodes resend their verdicts
	h.wantSite("dallas", Up, SyncUnknown)
	if err := Check(h.s, Command{Op: OpPromote, Site: "dallas"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("promote dallas: %v", err)
	}
	wantDecisions(t, h.step(at(time.Hour)))
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	h.sync("dallas", true, "lag=0", at(2*time.Hour), nodes6...)
	h.wantSite("dallas", Up, InSync)
	wantDecisions(t, h.step(at(2*time.Hour+5*time.Minute)), "cas/default failback losangeles->dallas")
}

// TestFoundMarkSyncedAgainstSyncCheck: dallas repaired but 12 items behind
// by every fresh node's replication check, cas failed over to losangeles.
// An unforced mark-synced must not make dallas in_sync against its own sync
// check (else an unforced promote fails cas back onto a site that is
// behind); forced, it is accepted and audited.
func TestFoundMarkSyncedAgainstSyncCheck(t *testing.T) {
	h := newHarness(t, storySpec(Manual, Manual))
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	h.mustCmd(Command{Time: at(2 * time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles", Actor: "alice"})
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	back := at(time.Hour)
	h.site("dallas", true, back, nodes6...)
	h.sync("dallas", false, "items_behind = 12, want <= 0", back, nodes6...)
	h.wantSite("dallas", Up, Resyncing)

	mark := Command{Time: back.Add(time.Second), Op: OpMarkSynced, Site: "dallas", Actor: "mallory"}
	err := h.cmd(mark)
	var ce *CommandError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &ce) || !ce.Refused ||
		err.Error() != `mark-synced dallas refused: sync check "replication" reports not_in_sync (items_behind = 12, want <= 0)` {
		t.Fatalf("unforced mark-synced while every node says behind: %v", err)
	}
	h.wantSite("dallas", Up, Resyncing)
	if err := h.cmd(Command{Time: back.Add(2 * time.Second), Op: OpPromote, Site: "dallas"}); !errors.Is(err, ErrRefused) {
		t.Fatalf("promote dallas after the refused mark-synced: %v", err)
	}
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)

	// A minority of fresh nodes saying behind is no quorum: the operator
	// may attest.
	h2 := newHarness(t, storySpec(Manual, Manual))
	h2.allUp(at(0))
	h2.site("dallas", false, at(time.Minute), nodes6...)
	h2.mustCmd(Command{Time: at(2 * time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles", Actor: "alice"})
	h2.site("dallas", true, back, nodes6...)
	h2.sync("dallas", false, "items_behind = 12, want <= 0", back, nodes6[:3]...)
	h2.wantSite("dallas", Up, Resyncing)
	h2.mustCmd(mark)
	h2.wantSite("dallas", Up, InSync)

	// Forced with a reason: accepted, recorded as forced.
	forced := mark
	forced.Time, forced.Force, forced.Reason = back.Add(3*time.Second), true, "restored from backup, check lags"
	h.mustCmd(forced)
	h.wantSite("dallas", Up, InSync)
	if e := h.s.history[len(h.s.history)-1]; e.What != "mark-synced" || !e.Forced || e.From != "resyncing" || e.To != "in_sync" ||
		e.Reason != forced.Reason || e.Actor != "mallory" {
		t.Fatalf("forced mark-synced entry = %+v", e)
	}
}

// TestFoundForcedMarkSyncedHolds: after a forced mark-synced, the nodes
// keep re-sending the verdict they held (same InSync, a new reason, every
// beat, one by one and in verdict sets): dallas stays in_sync, across a
// snapshot too. Only verdicts that differ from what a node held at the
// mark, or from a node that held none, count; dallas going down while
// inactive still loses in_sync.
func TestFoundForcedMarkSyncedHolds(t *testing.T) {
	h := newHarness(t, storySpec(Manual, Manual))
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	h.mustCmd(Command{Time: at(2 * time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles", Actor: "alice"})
	back := at(time.Hour)
	h.site("dallas", true, back, nodes6...)
	h.sync("dallas", false, "items_behind = 12, want <= 0", back, nodes6[:5]...) // ns6 holds none
	h.wantSite("dallas", Up, Resyncing)
	h.mustCmd(Command{Time: back.Add(time.Second), Op: OpMarkSynced, Site: "dallas", Force: true, Reason: "restored from backup", Actor: "alice"})
	h.wantSite("dallas", Up, InSync)

	// Every beat for a minute: the same verdict with a new reason from
	// ns1..ns5, one by one on even beats, as full verdict sets on odd ones
	// (every site up, as the nodes see it).
	var allUp []Observation
	for _, sp := range h.s.spec.Sites {
		for _, ep := range sp.Endpoints {
			allUp = append(allUp, Observation{Site: sp.Name, Endpoint: ep.Name, Check: "https", Up: true, Reason: "200 OK"})
		}
	}
	for i := range 60 {
		when := back.Add(time.Duration(2+i) * time.Second)
		reason := fmt.Sprintf("items_behind = %d, want <= 0", 12-i/10)
		for _, n := range nodes6[:5] {
			if i%2 == 0 {
				h.sync("dallas", false, reason, when, n)
			} else {
				h.apply(VerdictSet{Time: when, Node: n, Observations: allUp,
					Sync: []SyncVerdict{{Site: "dallas", Check: "replication", Reason: reason}}})
			}
		}
		h.wantSite("dallas", Up, InSync)
	}
	votes := h.siteStatus("dallas").SyncVotes
	if len(votes) != 5 || !votes[0].Attested || votes[0].InSync || votes[0].Reason != "items_behind = 7, want <= 0" {
		t.Fatalf("dallas sync votes = %+v", votes)
	}
	// The promote that forcing mark-synced was for.
	if err := Check(h.s, Command{Op: OpPromote, Site: "dallas"}); err != nil {
		t.Fatalf("promote dallas after a forced mark-synced: %v", err)
	}

	// Through a snapshot, the attestation holds.
	b, err := MarshalSnapshot(h.s)
	if err != nil {
		t.Fatal(err)
	}
	if h.s, err = UnmarshalSnapshot(b); err != nil {
		t.Fatal(err)
	}
	when := back.Add(2 * time.Minute)
	h.sync("dallas", false, "items_behind = 6, want <= 0", when, nodes6[:5]...)
	h.wantSite("dallas", Up, InSync)

	// ns6 held no verdict at the mark, and ns1..ns3 change theirs (in sync,
	// then behind again): those count. ns4 and ns5 re-sending do not: three
	// of a quorum of four.
	h.sync("dallas", false, "items_behind = 6, want <= 0", when, "ns6")
	h.sync("dallas", true, "items_behind = 0, want <= 0", when, "ns1", "ns2")
	h.sync("dallas", false, "items_behind = 1, want <= 0", when.Add(time.Second), "ns1", "ns2")
	h.wantSite("dallas", Up, InSync)
	if err := h.cmd(Command{Op: OpMarkSynced, Site: "dallas"}); err != nil {
		t.Fatalf("unforced mark-synced with 3 counting not-in-sync votes of a quorum of 4: %v", err)
	}
	h.wantSite("dallas", Up, InSync)
	// The unforced mark forgot every verdict: now each one counts.
	h.sync("dallas", false, "items_behind = 1, want <= 0", when.Add(2*time.Second), "ns1", "ns2", "ns3")
	h.wantSite("dallas", Up, InSync)
	h.sync("dallas", false, "items_behind = 1, want <= 0", when.Add(2*time.Second), "ns4")
	h.wantSite("dallas", Up, Resyncing)

	// A forced mark, then dallas goes down while inactive: resync.
	h.mustCmd(Command{Time: when.Add(3 * time.Second), Op: OpMarkSynced, Site: "dallas", Force: true, Reason: "again", Actor: "alice"})
	h.wantSite("dallas", Up, InSync)
	h.site("dallas", false, when.Add(4*time.Second), nodes6...)
	h.wantSite("dallas", Down, Resyncing)
	if votes := h.siteStatus("dallas").SyncVotes; len(votes) != 0 {
		t.Fatalf("dallas sync votes after losing in_sync = %+v", votes)
	}
}
