package failover

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestStoryManual is the story this project exists for, with failover and
// fail-back both manual.
func TestStoryManual(t *testing.T) {
	h := newHarness(t, storySpec(Manual, Manual))
	h.allUp(at(0))
	h.wantRoute("cas", "default", "dallas", 0, Normal)
	h.wantSite("dallas", Up, InSync)
	h.wantSite("losangeles", Up, InSync)

	// One Dallas endpoint fails: it leaves the answers, the service stays.
	h.endpoint("dallas", "192.0.2.10", false, at(time.Minute), nodes6...)
	a, _ := h.s.Answer("cas", "default")
	if a.Site != "dallas" || !slices.Equal(a.Endpoints, eps("192.0.2.11")) || a.FailOpen {
		t.Fatalf("answer after one endpoint failed = %+v", a)
	}
	h.wantSite("dallas", Up, InSync)
	wantDecisions(t, h.decide(at(10*time.Minute)))

	// Every Dallas endpoint fails, manual mode: awaiting_operator after
	// down_for, still Dallas, answering with every endpoint (fail open).
	down := at(20 * time.Minute)
	h.endpoint("dallas", "192.0.2.11", false, down, nodes6...)
	h.wantSite("dallas", Down, InSync)
	wantDecisions(t, h.decide(down.Add(30*time.Second-time.Nanosecond)))
	h.wantRoute("cas", "default", "dallas", 0, Normal)
	wantDecisions(t, h.decide(down.Add(30*time.Second)))
	h.wantRoute("cas", "default", "dallas", 0, AwaitingOperator)
	wantDecisions(t, h.decide(down.Add(time.Hour)))
	h.wantRoute("cas", "default", "dallas", 0, AwaitingOperator)
	a, _ = h.s.Answer("cas", "default")
	if a.Site != "dallas" || !a.FailOpen || len(a.Endpoints) != 2 {
		t.Fatalf("answer while awaiting operator = %+v", a)
	}

	// The operator fails over to Los Angeles: active LA, epoch + 1, history.
	h.mustCmd(Command{Time: at(85 * time.Minute), Op: OpFailover, Service: "cas", Site: "losangeles",
		Actor: "alice", Reason: "dallas flooded"})
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	last := h.s.history[len(h.s.history)-1]
	want := Entry{Seq: last.Seq, Time: at(85 * time.Minute), Kind: KindCommandEntry, What: "failover", Actor: "alice",
		Service: "cas", Route: "default", From: "dallas", To: "losangeles", Reason: "dallas flooded", Epoch: 1}
	if last != want {
		t.Fatalf("history entry = %+v\nwant %+v", last, want)
	}
	// Dallas was down and is no longer active: it must resync.
	h.wantSite("dallas", Down, Resyncing)

	// Dallas comes back healthy: resyncing, and its sync check says why.
	back := at(2 * time.Hour)
	h.site("dallas", true, back, nodes6...)
	h.sync("dallas", false, "copy_queue_length=12", back, nodes6...)
	h.wantSite("dallas", Up, Resyncing)
	wantDecisions(t, h.decide(back.Add(time.Hour))) // fail-back is manual anyway

	// promote dallas is refused, naming the sync check and its value.
	err := h.cmd(Command{Op: OpPromote, Site: "dallas", Actor: "alice"})
	wantErr(t, err, ErrRefused, `promote dallas refused: sync check "replication" reports not_in_sync (copy_queue_length=12)`)
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)

	// The sync check passes: promote dallas is accepted.
	synced := at(4 * time.Hour)
	h.sync("dallas", true, "copy_queue_length=0", synced, nodes6...)
	h.wantSite("dallas", Up, InSync)
	wantDecisions(t, h.decide(synced.Add(time.Hour))) // still manual: waits for promote
	h.mustCmd(Command{Op: OpPromote, Site: "dallas", Actor: "alice"})
	h.wantRoute("cas", "default", "dallas", 2, Normal)
	h.wantSite("losangeles", Up, InSync)
	a, _ = h.s.Answer("cas", "default")
	if a.Site != "dallas" || a.Epoch != 2 || len(a.Endpoints) != 2 || a.FailOpen {
		t.Fatalf("answer after promote = %+v", a)
	}
	last = h.s.history[len(h.s.history)-1]
	if last.What != "promote" || last.From != "losangeles" || last.To != "dallas" || last.Epoch != 2 {
		t.Fatalf("history entry after promote = %+v", last)
	}
}

// TestStoryAuto is the same story with failover and fail-back automatic: no
// human is needed, and fail-back still waits for sync and stable_for.
func TestStoryAuto(t *testing.T) {
	h := newHarness(t, storySpec(Auto, Auto))
	h.allUp(at(0))

	h.endpoint("dallas", "192.0.2.10", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.step(at(10*time.Minute)))
	h.wantRoute("cas", "default", "dallas", 0, Normal)

	down := at(20 * time.Minute)
	h.endpoint("dallas", "192.0.2.11", false, down, nodes6...)
	wantDecisions(t, h.step(down.Add(30*time.Second-time.Nanosecond)))
	h.wantRoute("cas", "default", "dallas", 0, Normal)
	wantDecisions(t, h.step(down.Add(30*time.Second)), "cas/default failover dallas->losangeles")
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	last := h.s.history[len(h.s.history)-1]
	if last.Kind != KindDecisionEntry || last.What != "failover" || last.Actor != "leader" ||
		last.Reason != "dallas down for 30s (down_for 30s); losangeles stable: up and in_sync for 20m30s (stable_for 5m0s)" || last.Epoch != 1 {
		t.Fatalf("history entry = %+v", last)
	}
	h.wantSite("dallas", Down, Resyncing)

	back := at(2 * time.Hour)
	h.site("dallas", true, back, nodes6...)
	h.sync("dallas", false, "copy_queue_length=12", back, nodes6...)
	h.wantSite("dallas", Up, Resyncing)
	// Healthy for far longer than stable_for, but not in sync: no fail-back.
	wantDecisions(t, h.step(back.Add(3*time.Hour)))
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)

	synced := back.Add(3*time.Hour + time.Minute)
	h.sync("dallas", true, "copy_queue_length=0", synced, nodes6...)
	h.wantSite("dallas", Up, InSync)
	wantDecisions(t, h.step(synced.Add(5*time.Minute-time.Nanosecond)))
	wantDecisions(t, h.step(synced.Add(5*time.Minute)), "cas/default failback losangeles->dallas")
	h.wantRoute("cas", "default", "dallas", 2, Normal)
	h.wantSite("losangeles", Up, InSync)
}

// TestStoryAutoStableForCountsFromHealth: fail-back waits stable_for from
// the later of "up" and "in_sync".
func TestStoryAutoStableForCountsFromHealth(t *testing.T) {
	h := newHarness(t, storySpec(Auto, Auto))
	h.allUp(at(0))
	h.site("dallas", false, at(time.Minute), nodes6...)
	wantDecisions(t, h.step(at(2*time.Minute)), "cas/default failover dallas->losangeles")
	// In sync first (an operator attests it while dallas is still down)...
	h.mustCmd(Command{Time: at(10 * time.Minute), Op: OpMarkSynced, Site: "dallas", Force: true, Reason: "restored from backup"})
	h.wantSite("dallas", Down, InSync)
	// ... then up: stable_for counts from up.
	up := at(20 * time.Minute)
	h.site("dallas", true, up, nodes6...)
	wantDecisions(t, h.step(up.Add(5*time.Minute-time.Nanosecond)))
	wantDecisions(t, h.step(up.Add(5*time.Minute)), "cas/default failback losangeles->dallas")
	if e := h.s.history[len(h.s.history)-2]; e.What != "mark-synced" || !e.Forced || e.From != "resyncing" {
		t.Fatalf("mark-synced entry = %+v", e)
	}
	if !errors.Is(h.cmd(Command{Op: OpMarkSynced, Site: "dallas", Force: true}), ErrInvalid) {
		t.Fatal("force without a reason accepted")
	}
}
