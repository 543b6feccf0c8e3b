package web

import (
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

// TestAttestedSyncShown: after a forced mark-synced against a sync check
// that reads the site behind, status.json says the site is in_sync by
// attestation, and which votes were overridden; before it, it does not.
func TestAttestedSyncShown(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, func(o *Options) { o.DocRefresh = -1 })
	e.failedOverAndResyncing()
	e.sync("dallas", false, "items_behind = 12", t0.Add(10*time.Minute))
	dallas := func() api.Site {
		var st api.Status
		e.getJSON("/status.json", "", &st)
		for _, s := range st.Sites {
			if s.Name == "dallas" {
				return s
			}
		}
		t.Fatal("no dallas")
		return api.Site{}
	}
	if d := dallas(); d.SyncAttested || d.Sync != "resyncing" {
		t.Fatalf("before the mark: sync %s attested %v", d.Sync, d.SyncAttested)
	}
	e.apply(failover.Command{Time: t0.Add(11 * time.Minute), Op: failover.OpMarkSynced, Site: "dallas", Actor: "alice",
		Force: true, Reason: "DBA checked the copy queue"})
	d := dallas()
	if d.Sync != "in_sync" || !d.SyncAttested {
		t.Errorf("after a forced mark-synced: sync %s attested %v, want in_sync attested", d.Sync, d.SyncAttested)
	}
	for _, v := range d.SyncVotes {
		if !v.Attested {
			t.Errorf("vote of %s not marked attested: %+v", v.Node, v)
		}
	}
}
