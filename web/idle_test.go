package web

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

// idleSecond moves the cluster on to at, as an idle cluster does every
// second: the leader's Tick, and each node's Beat every third second
// (staggered by sec), with unchanged digests. Nothing a reader of the
// documents cares about changes; state_time, applied_index and the nodes'
// last_seen and clock do.
func (e *env) idleSecond(at time.Time, sec int) {
	e.t.Helper()
	e.clock.Set(at)
	e.apply(failover.Tick{Time: at})
	for i, n := range nodes6 {
		if (sec+i)%3 == 0 {
			e.apply(failover.Beat{Time: at, Node: n, Digest: "sha256:aaaa", Clock: at.Add(-time.Duration(i) * time.Millisecond)})
		}
	}
}

// get fetches a public document with If-None-Match inm (none when "") and
// the given Accept-Encoding; it returns the code, the ETag and the body.
func (e *env) get(path, inm, enc string) (int, string, []byte) {
	e.t.Helper()
	h := http.Header{"Accept-Encoding": {enc}}
	if inm != "" {
		h.Set("If-None-Match", inm)
	}
	resp := e.req("GET", path, "", "", h)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("ETag"), b
}

// etags fetches every public document and returns their ETags by path.
func (e *env) etags(enc string) map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, p := range publicPaths {
		code, tag, _ := e.get(p, "", enc)
		if code != 200 || tag == "" {
			e.t.Fatalf("GET %s (%s) = %d, ETag %q", p, enc, code, tag)
		}
		out[p] = tag
	}
	return out
}

func (e *env) status() api.Status {
	e.t.Helper()
	code, _, b := e.get("/status.json", "", "identity")
	if code != 200 {
		e.t.Fatalf("GET /status.json = %d", code)
	}
	var s api.Status
	if err := json.Unmarshal(b, &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

var statuspagePaths = publicPaths[2:]

// TestIdleKeepsETags: Ticks and Beats only, for 29 s: every public
// document keeps its ETag (plain and gzip) and a conditional GET is 304,
// nothing is rendered again. At DocRefresh (30s) the own-schema document
// and the page are rendered again with the current times; the Statuspage
// documents, which show no volatile field, keep theirs.
func TestIdleKeepsETags(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	plain, gz := e.etags("identity"), e.etags("gzip")
	first := e.status()
	if !first.GeneratedAt.Equal(t0) || !first.StateTime.Equal(t0) {
		t.Fatalf("first render: generated_at %v state_time %v, want %v", first.GeneratedAt, first.StateTime, t0)
	}
	r0 := e.counter("geodnsd_web_renders_total")
	for s := 1; s < 30; s++ {
		e.idleSecond(t0.Add(time.Duration(s)*time.Second), s)
		for _, p := range publicPaths {
			for enc, tags := range map[string]map[string]string{"identity": plain, "gzip": gz} {
				if code, tag, body := e.get(p, tags[p], enc); code != 304 || tag != tags[p] || len(body) != 0 {
					t.Fatalf("%ds: GET %s (%s) If-None-Match %s = %d, ETag %q, %d bytes; want 304 with the same ETag",
						s, p, enc, tags[p], code, tag, len(body))
				}
			}
		}
	}
	if n := e.counter("geodnsd_web_renders_total"); n != r0 {
		t.Errorf("renders over 29 idle seconds = %v, want 0", n-r0)
	}
	if n := e.counter("geodnsd_web_render_skips_total"); n != 29 {
		t.Errorf("render_skips_total = %v, want 29 (one per second a request saw a change)", n)
	}
	// Within the bound the document shows the times of its render.
	if s := e.status(); !s.GeneratedAt.Equal(t0) || !s.StateTime.Equal(t0) {
		t.Errorf("at 29s: generated_at %v state_time %v, want the render's %v", s.GeneratedAt, s.StateTime, t0)
	}

	at := t0.Add(30 * time.Second)
	e.idleSecond(at, 30)
	for _, p := range []string{"/status.json", "/"} {
		if code, tag, _ := e.get(p, plain[p], "identity"); code != 200 || tag == plain[p] {
			t.Errorf("at DocRefresh: GET %s = %d, ETag %q (was %q); want 200 with a new ETag", p, code, tag, plain[p])
		}
	}
	for _, p := range statuspagePaths {
		if code, tag, _ := e.get(p, plain[p], "identity"); code != 304 || tag != plain[p] {
			t.Errorf("at DocRefresh: GET %s = %d, ETag %q; want 304, %q", p, code, tag, plain[p])
		}
	}
	s := e.status()
	if !s.GeneratedAt.Equal(at) || !s.StateTime.Equal(at) || s.AppliedIndex != e.mem.View().Index {
		t.Errorf("refreshed: generated_at %v state_time %v applied_index %d; want %v, %v, %d",
			s.GeneratedAt, s.StateTime, s.AppliedIndex, at, at, e.mem.View().Index)
	}
	for i, n := range s.Nodes {
		// Node i beats when (sec+i)%3 == 0: its last beat was at most 2 s ago.
		last := at.Add(-time.Duration((30+i)%3) * time.Second)
		if !n.LastSeen.Equal(last) || !n.Fresh {
			t.Errorf("refreshed: node %s last_seen %v fresh %v, want %v, true", n.ID, n.LastSeen, n.Fresh, last)
		}
	}
	if n := e.counter("geodnsd_web_renders_total"); n != r0+1 {
		t.Errorf("renders after DocRefresh = %v, want 1", n-r0)
	}
}

// TestRealChangeNewETag: within DocRefresh, a site going down and then a
// command each give new ETags at once, and the documents then show the
// current times.
func TestRealChangeNewETag(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	tags := e.etags("identity")
	for s := 1; s <= 10; s++ {
		e.idleSecond(t0.Add(time.Duration(s)*time.Second), s)
	}
	down := t0.Add(11 * time.Second)
	e.clock.Set(down)
	e.site("dallas", false, down)
	// The Statuspage documents show no site health: only the route's
	// condition, which moves once dallas has been down for down_for (30s).
	for _, p := range publicPaths {
		code, tag, _ := e.get(p, tags[p], "identity")
		if p == "/" || p == "/status.json" {
			if code != 200 || tag == tags[p] {
				t.Errorf("dallas down: GET %s = %d, ETag %q (was %q); want 200 with a new ETag", p, code, tag, tags[p])
			}
			tags[p] = tag
		} else if code != 304 {
			t.Errorf("dallas down: GET %s = %d, ETag %q (was %q); want 304", p, code, tag, tags[p])
		}
	}
	s := e.status()
	if s.Sites[0].Name != "dallas" || s.Sites[0].Health != "down" || !s.StateTime.Equal(down) || !s.GeneratedAt.Equal(down) {
		t.Errorf("dallas down: site %s %s, state_time %v generated_at %v; want dallas down at %v",
			s.Sites[0].Name, s.Sites[0].Health, s.StateTime, s.GeneratedAt, down)
	}
	e.idleSecond(down.Add(31*time.Second), 42)
	for _, p := range []string{"/", "/status.json", "/api/v2/status.json", "/api/v2/summary.json", "/api/v2/components.json"} {
		code, tag, _ := e.get(p, tags[p], "identity")
		if code != 200 || tag == tags[p] {
			t.Errorf("awaiting operator: GET %s = %d, ETag %q (was %q); want 200 with a new ETag", p, code, tag, tags[p])
		}
	}
	if c := e.status().Services[0].Routes[0].Condition; c != "awaiting_operator" {
		t.Errorf("condition = %q, want awaiting_operator", c)
	}

	tags = e.etags("identity")
	e.idleSecond(down.Add(32*time.Second), 43)
	e.clock.Set(down.Add(33 * time.Second))
	if code, body := e.do("POST", "/api/v1/failover", opToken, `{"service":"cas","site":"losangeles","reason":"dallas down"}`); code != 200 {
		t.Fatalf("failover: %d %s", code, body)
	}
	for _, p := range publicPaths {
		code, tag, _ := e.get(p, tags[p], "identity")
		if code != 200 || tag == tags[p] {
			t.Errorf("after failover: GET %s = %d, ETag %q (was %q); want 200 with a new ETag", p, code, tag, tags[p])
		}
	}
	s = e.status()
	if r := s.Services[0].Routes[0]; r.Active != "losangeles" || r.Epoch != 1 || len(s.History) == 0 || s.History[0].What != "failover" {
		t.Errorf("after failover: route %+v, history %+v", r, s.History)
	}
}

// TestRefreshWithoutChange: a view that does not change at all (a halted
// node) still gets its generated_at refreshed once DocRefresh has passed.
func TestRefreshWithoutChange(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, func(o *Options) { o.DocRefresh = 10 * time.Second })
	tags := e.etags("identity")
	e.clock.Set(t0.Add(9 * time.Second))
	if code, _, _ := e.get("/status.json", tags["/status.json"], "identity"); code != 304 {
		t.Errorf("before DocRefresh: %d, want 304", code)
	}
	e.clock.Set(t0.Add(10 * time.Second))
	if s := e.status(); !s.GeneratedAt.Equal(t0.Add(10*time.Second)) || !s.StateTime.Equal(t0) {
		t.Errorf("after DocRefresh: generated_at %v state_time %v, want %v, %v", s.GeneratedAt, s.StateTime, t0.Add(10*time.Second), t0)
	}
	for _, p := range statuspagePaths {
		if code, tag, _ := e.get(p, tags[p], "identity"); code != 304 {
			t.Errorf("GET %s = %d ETag %q, want 304 %q", p, code, tag, tags[p])
		}
	}
}

// TestDocRefreshNegative: a negative DocRefresh renders on every change
// (each Tick gives a new ETag).
func TestDocRefreshNegative(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, func(o *Options) { o.DocRefresh = -1 })
	tags := e.etags("identity")
	e.idleSecond(t0.Add(time.Second), 1)
	if code, tag, _ := e.get("/status.json", tags["/status.json"], "identity"); code != 200 || tag == tags["/status.json"] {
		t.Errorf("after a Tick: %d ETag %q, want 200 and a new ETag", code, tag)
	}
}

// TestFingerprint: each field a reader cares about changes the
// fingerprint, each volatile one does not; the status is not modified.
func TestFingerprint(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.failedOverAndResyncing()
	e.mem.SetApplied("ns2", e.mem.View().Index)
	base := e.status()
	var hist []api.HistoryEntry // newest first, as the renderer passes it
	h := e.mem.View().State.Status().History
	for i := len(h) - 1; i >= 0; i-- {
		hist = append(hist, entryOf(h[i]))
	}
	if len(base.Services[0].Routes[0].Blocked) == 0 || len(base.Sites[0].Endpoints[0].Voters) == 0 ||
		len(base.Sites[0].SyncVotes) == 0 || len(hist) == 0 {
		t.Fatalf("the base status lacks what the cases change: %+v", base)
	}
	clone := func() api.Status {
		b, _ := json.Marshal(base)
		var s api.Status
		json.Unmarshal(b, &s)
		return s
	}
	keep := clone()
	want := fingerprint(&base, hist)
	later := api.At(t0.Add(time.Hour))
	cases := []struct {
		name     string
		volatile bool
		f        func(s *api.Status)
	}{
		{"generated_at", true, func(s *api.Status) { s.GeneratedAt = later }},
		{"state_time", true, func(s *api.Status) { s.StateTime = later }},
		{"applied_index", true, func(s *api.Status) { s.AppliedIndex += 100; s.Nodes[0].AppliedIndex += 100 }},
		{"node last_seen", true, func(s *api.Status) { s.Nodes[2].LastSeen = later }},
		{"node clock", true, func(s *api.Status) { s.Nodes[2].Clock = later }},
		{"node applied within slack", true, func(s *api.Status) { s.Nodes[1].AppliedIndex -= 3 }},
		{"endpoint vote time", true, func(s *api.Status) { s.Sites[0].Endpoints[0].Voters[0].Time = later }},
		{"sync vote time", true, func(s *api.Status) { s.Sites[0].SyncVotes[0].Time = later }},
		{"stable_for blocker", false, func(s *api.Status) {
			s.Services[0].Routes[0].Blocked[0] = api.Blocker{Site: "dallas", Check: "stable_for", Observed: "up and in_sync for 1m0s of 5m0s"}
		}},
		{"route active", false, func(s *api.Status) { s.Services[0].Routes[0].Active = "dallas" }},
		{"route condition", false, func(s *api.Status) { s.Services[0].Routes[0].Condition = "normal" }},
		{"route epoch", false, func(s *api.Status) { s.Services[0].Routes[0].Epoch++ }},
		{"route answer", false, func(s *api.Status) { s.Services[0].Routes[0].Answer = []string{"192.0.2.10"} }},
		{"route reason", false, func(s *api.Status) { s.Services[0].Routes[0].Reason = "other" }},
		{"route blocked", false, func(s *api.Status) { s.Services[0].Routes[0].Blocked = nil }},
		{"blocker observed", false, func(s *api.Status) { s.Services[0].Routes[0].Blocked[0].Observed = "not_in_sync: copy_queue_length=3" }},
		{"site health", false, func(s *api.Status) { s.Sites[0].Health = "down" }},
		{"site sync", false, func(s *api.Status) { s.Sites[0].Sync = "in_sync" }},
		{"site admin", false, func(s *api.Status) { s.Sites[0].Admin = "drained" }},
		{"votes up", false, func(s *api.Status) { s.Sites[0].Endpoints[0].Votes.Up-- }},
		{"votes down", false, func(s *api.Status) { s.Sites[0].Endpoints[0].Votes.Down++ }},
		{"voter verdict", false, func(s *api.Status) { v := &s.Sites[0].Endpoints[0].Voters[0]; v.Up = !v.Up }},
		{"voter fresh", false, func(s *api.Status) { v := &s.Sites[0].Endpoints[0].Voters[0]; v.Fresh = !v.Fresh }},
		{"sync verdict", false, func(s *api.Status) { v := &s.Sites[0].SyncVotes[0]; v.Up = !v.Up }},
		{"node fresh", false, func(s *api.Status) { s.Nodes[3].Fresh = false }},
		{"node leader", false, func(s *api.Status) { s.Nodes[3].Leader = true }},
		{"node digest", false, func(s *api.Status) { s.Nodes[3].ConfigDigest = "sha256:bbbb" }},
		{"node applied unknown", false, func(s *api.Status) { s.Nodes[1].AppliedIndex = 0 }},
		{"node applied far behind", false, func(s *api.Status) { s.AppliedIndex += appliedSlack + 1 }},
		{"frozen", false, func(s *api.Status) { s.Frozen = true }},
		{"config mismatch", false, func(s *api.Status) { s.ConfigMismatch = true }},
		{"quorum", false, func(s *api.Status) { s.Quorum = false }},
		{"leader", false, func(s *api.Status) { s.Leader = "ns2" }},
		{"history", false, func(s *api.Status) { s.History = s.History[1:] }},
	}
	for _, c := range cases {
		s := clone()
		c.f(&s)
		if got := fingerprint(&s, hist); (got == want) != c.volatile {
			t.Errorf("%s: fingerprint changed = %v, want %v", c.name, got != want, !c.volatile)
		}
	}
	stable := func(observed string) [32]byte {
		s := clone()
		s.Services[0].Routes[0].Blocked[0] = api.Blocker{Site: "dallas", Check: "stable_for", Observed: observed}
		return fingerprint(&s, hist)
	}
	if stable("up and in_sync for 1m0s of 5m0s") != stable("up and in_sync for 1m1s of 5m0s") {
		t.Error("stable_for progress: fingerprint changed")
	}
	if fingerprint(&base, hist[1:]) == want {
		t.Error("a history entry pruned: fingerprint unchanged")
	}
	if !reflect.DeepEqual(keep, clone()) {
		t.Error("fingerprint modified the status")
	}
}

// TestIdleRenders measures renders and 304s over 60 simulated seconds of an
// idle cluster (Ticks every second, Beats every 3 s per node) with a client
// polling every public document every 5 s with If-None-Match (as
// max-age=5 invites): before (DocRefresh < 0: a render per state change)
// and now (DocRefresh 30s).
func TestIdleRenders(t *testing.T) {
	for _, c := range []struct {
		name          string
		refresh       time.Duration
		renders, n304 int
	}{
		{"per-change", -1, 12, 72}, // the Statuspage documents alone keep their ETags
		{"refresh-30s", 30 * time.Second, 2, 92},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, failover.Auto, failover.Manual, func(o *Options) { o.DocRefresh = c.refresh })
			tags := e.etags("identity")
			r0 := e.counter("geodnsd_web_renders_total")
			n304, n200 := 0, 0
			for s := 1; s <= 60; s++ {
				e.idleSecond(t0.Add(time.Duration(s)*time.Second), s)
				if s%5 != 0 {
					continue
				}
				for _, p := range publicPaths {
					switch code, tag, _ := e.get(p, tags[p], "identity"); code {
					case 304:
						n304++
					case 200:
						n200++
						tags[p] = tag
					default:
						t.Fatalf("GET %s = %d", p, code)
					}
				}
			}
			renders := e.counter("geodnsd_web_renders_total") - r0
			t.Logf("60 s idle, DocRefresh %v: %v renders, %d polls 304, %d polls 200", c.refresh, renders, n304, n200)
			if int(renders) != c.renders || n304 != c.n304 {
				t.Errorf("renders %v, 304s %d; want %d, %d", renders, n304, c.renders, c.n304)
			}
		})
	}
}
