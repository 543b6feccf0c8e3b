package web

import (
	"crypto/sha256"
	"encoding/json"
	"slices"

	"github.com/geodnsd/geodnsd/web/api"
)

// appliedSlack is how far (in log entries) a node's applied index may trail
// this node's before the documents count it as behind: within it, a node's
// applied_index is a volatile field like its last_seen.
const appliedSlack = 256

// fingerprint hashes what the public documents show that a reader cares
// about, leaving out the volatile fields an idle cluster moves every second
// or so: generated_at, state_time and applied_index; each node's last_seen
// and clock, and its applied_index beyond three buckets (unknown, within
// appliedSlack of this node's, further behind); every vote's time; the
// elapsed time in a stable_for blocker. It keeps everything else of status
// (services, routes, sites, verdicts and their reasons and counts, nodes'
// freshness, leader, digests, frozen, config mismatch, quorum, the recent
// history) and, for the Statuspage incidents, the length and oldest entry
// of the whole history (hist, newest first). Equal fingerprints mean the
// documents rendered from either status differ only in volatile fields.
func fingerprint(status *api.Status, hist []api.HistoryEntry) [sha256.Size]byte {
	n := *status
	n.GeneratedAt, n.StateTime, n.AppliedIndex = api.Time{}, api.Time{}, 0
	n.Nodes = slices.Clone(n.Nodes)
	for i := range n.Nodes {
		nd := &n.Nodes[i]
		nd.LastSeen, nd.Clock = api.Time{}, api.Time{}
		switch {
		case nd.AppliedIndex == 0:
		case nd.AppliedIndex+appliedSlack >= status.AppliedIndex:
			nd.AppliedIndex = 1
		default:
			nd.AppliedIndex = 2
		}
	}
	n.Services = slices.Clone(n.Services)
	for i := range n.Services {
		svc := &n.Services[i]
		svc.Routes = slices.Clone(svc.Routes)
		for j := range svc.Routes {
			rt := &svc.Routes[j]
			rt.Blocked = slices.Clone(rt.Blocked)
			for k := range rt.Blocked {
				if rt.Blocked[k].Check == "stable_for" {
					rt.Blocked[k].Observed = ""
				}
			}
		}
	}
	n.Sites = slices.Clone(n.Sites)
	for i := range n.Sites {
		site := &n.Sites[i]
		site.SyncVotes = timeless(site.SyncVotes)
		site.Checks.Voters = timeless(site.Checks.Voters)
		site.Endpoints = slices.Clone(site.Endpoints)
		for j := range site.Endpoints {
			site.Endpoints[j].Voters = timeless(site.Endpoints[j].Voters)
		}
	}
	type whole struct {
		Len    int
		Oldest uint64
	}
	var w whole
	if len(hist) > 0 {
		w = whole{len(hist), hist[len(hist)-1].Seq}
	}
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(struct {
		S *api.Status
		H whole
	}{&n, w}); err != nil {
		panic(err) // plain values only: cannot happen
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// timeless returns a copy of votes without their times.
func timeless(votes []api.Vote) []api.Vote {
	out := slices.Clone(votes)
	for i := range out {
		out[i].Time = api.Time{}
	}
	return out
}
