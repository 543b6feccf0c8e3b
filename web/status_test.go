package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

// TestStatusJSONFields reads /status.json as an outside checker does: as
// untyped JSON, field by field, with the names and shapes of issue 11.
func TestStatusJSONFields(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.mem.SetApplied("ns2", 7)
	e.clock.Set(t0.Add(time.Second))
	var doc map[string]any
	e.getJSON("/status.json", "", &doc)

	want := map[string]any{"schema": 1.0, "node": "ns1", "leader": "ns1", "quorum": true,
		"generated_at": "2026-11-30T12:00:01Z", "frozen": false, "config_mismatch": false}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %#v, want %#v", k, doc[k], v)
		}
	}
	svc := doc["services"].([]any)[0].(map[string]any)
	for k, v := range map[string]any{"name": "cas", "failover": "manual", "failback": "manual", "ttl": "30s",
		"down_for": "30s", "stable_for": "5m0s"} {
		if svc[k] != v {
			t.Errorf("services[0].%s = %#v, want %#v", k, svc[k], v)
		}
	}
	if got := svc["names"]; !reflect.DeepEqual(got, []any{"cas.example.com.", "owa.example.com."}) {
		t.Errorf("services[0].names = %v", got)
	}
	route := svc["routes"].([]any)[0].(map[string]any)
	for k, v := range map[string]any{"name": "default", "active": "dallas", "condition": "normal", "epoch": 0.0,
		"since": "2026-11-30T12:00:00Z", "reason": "initial"} {
		if route[k] != v {
			t.Errorf("routes[0].%s = %#v, want %#v", k, route[k], v)
		}
	}
	if got := route["answer"]; !reflect.DeepEqual(got, []any{"192.0.2.10", "192.0.2.11"}) {
		t.Errorf("routes[0].answer = %v", got)
	}
	site := doc["sites"].([]any)[0].(map[string]any)
	for k, v := range map[string]any{"name": "dallas", "health": "up", "sync": "in_sync", "admin": "active"} {
		if site[k] != v {
			t.Errorf("sites[0].%s = %#v, want %#v", k, site[k], v)
		}
	}
	ep := site["endpoints"].([]any)[0].(map[string]any)
	for k, v := range map[string]any{"name": "dal1", "address": "192.0.2.10", "health": "up"} {
		if ep[k] != v {
			t.Errorf("sites[0].endpoints[0].%s = %#v, want %#v", k, ep[k], v)
		}
	}
	if got := ep["votes"]; !reflect.DeepEqual(got, map[string]any{"up": 6.0, "down": 0.0}) {
		t.Errorf("endpoint votes = %v", got)
	}
	nodes := doc["nodes"].([]any)
	if len(nodes) != 6 {
		t.Fatalf("nodes = %v", nodes)
	}
	n2 := nodes[1].(map[string]any)
	for k, v := range map[string]any{"id": "ns2", "fresh": true, "last_seen": "2026-11-30T12:00:00Z",
		"applied_index": 7.0, "config_digest": "sha256:aaaa"} {
		if n2[k] != v {
			t.Errorf("nodes[1].%s = %#v, want %#v", k, n2[k], v)
		}
	}
	if h, ok := doc["history"].([]any); !ok || len(h) != 0 {
		t.Errorf("history = %#v, want []", doc["history"])
	}
	if strings.Contains(mustGet(t, e, "/status.json"), "secret") {
		t.Error("status.json leaks a token")
	}
}

func mustGet(t *testing.T, e *env, path string) string {
	t.Helper()
	code, body := e.do("GET", path, "", "")
	if code != 200 {
		t.Fatalf("GET %s = %d", path, code)
	}
	return body
}

// TestStatusAfterFailover: the typed document after a manual failover
// shows the move in the route, the history and what blocks fail-back.
func TestStatusAfterFailover(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.failedOverAndResyncing()
	var s api.Status
	e.getJSON("/status.json", "", &s)
	r := s.Services[0].Routes[0]
	if r.Active != "losangeles" || r.Condition != "failed_over" || r.Epoch != 1 || r.Reason != "dallas flooded" ||
		!slices.Equal(r.Answer, []string{"198.51.100.10"}) {
		t.Errorf("route = %+v", r)
	}
	wantBlock := api.Blocker{Site: "dallas", Check: "replication", Observed: "not_in_sync: copy_queue_length=12"}
	if len(r.Blocked) != 1 || r.Blocked[0] != wantBlock {
		t.Errorf("blocked = %+v, want %+v", r.Blocked, wantBlock)
	}
	if s.Sites[0].Name != "dallas" || s.Sites[0].Health != "up" || s.Sites[0].Sync != "resyncing" {
		t.Errorf("dallas = %+v", s.Sites[0])
	}
	if len(s.History) == 0 {
		t.Fatal("no history")
	}
	h := s.History[0]
	if h.Kind != "command" || h.What != "failover" || h.Actor != "alice" || h.Service != "cas" ||
		h.From != "dallas" || h.To != "losangeles" || h.Reason != "dallas flooded" || h.Epoch != 1 ||
		!h.Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("history[0] = %+v", h)
	}
}

func TestConfigMismatch(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	e.apply(failover.Beat{Time: t0.Add(time.Second), Node: "ns4", Digest: "sha256:bbbb"})
	var s api.Status
	e.getJSON("/status.json", "", &s)
	if !s.ConfigMismatch {
		t.Error("config_mismatch = false with two digests")
	}
	if !strings.Contains(mustGet(t, e, "/"), `id="config-mismatch"`) {
		t.Error("page does not show the mismatch")
	}
}

var publicPaths = []string{"/", "/status.json", "/api/v2/status.json", "/api/v2/summary.json",
	"/api/v2/components.json", "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json",
	"/api/v2/scheduled-maintenances.json"}

// TestPublicHeadersETag: every public document has its ETag, 304 on a
// matching If-None-Match (in each form RFC 9110 allows), max-age=5, CORS *;
// a state change gives a new ETag.
func TestPublicHeadersETag(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	id := http.Header{"Accept-Encoding": {"identity"}}
	for _, p := range publicPaths {
		t.Run(p, func(t *testing.T) {
			resp := e.req("GET", p, "", "", id)
			resp.Body.Close()
			tag := resp.Header.Get("ETag")
			if resp.StatusCode != 200 || !strings.HasPrefix(tag, `"`) || len(tag) < 10 {
				t.Fatalf("GET = %d, ETag %q", resp.StatusCode, tag)
			}
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=5") {
				t.Errorf("Cache-Control = %q", cc)
			}
			if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "*" {
				t.Errorf("Access-Control-Allow-Origin = %q", o)
			}
			for _, inm := range []string{tag, "W/" + tag, `"nope", ` + tag, "*"} {
				r := e.req("GET", p, "", "", http.Header{"If-None-Match": {inm}, "Accept-Encoding": {"identity"}})
				b := make([]byte, 1)
				n, _ := r.Body.Read(b)
				r.Body.Close()
				if r.StatusCode != 304 || n != 0 || r.Header.Get("ETag") != tag {
					t.Errorf("If-None-Match %s = %d (%d body bytes, ETag %q), want 304", inm, r.StatusCode, n, r.Header.Get("ETag"))
				}
			}
			r := e.req("GET", p, "", "", http.Header{"If-None-Match": {`"other"`}, "Accept-Encoding": {"identity"}})
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Errorf("non-matching If-None-Match = %d", r.StatusCode)
			}
			h := e.req("HEAD", p, "", "", nil)
			h.Body.Close()
			if h.StatusCode != 200 || h.Header.Get("ETag") != tag {
				t.Errorf("HEAD = %d ETag %q", h.StatusCode, h.Header.Get("ETag"))
			}
			o := e.req("OPTIONS", p, "", "", nil)
			o.Body.Close()
			if o.StatusCode != 204 || o.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("OPTIONS = %d", o.StatusCode)
			}
		})
	}
	before := e.req("GET", "/status.json", "", "", id)
	before.Body.Close()
	e.site("dallas", false, t0.Add(time.Minute))
	after := e.req("GET", "/status.json", "", "", http.Header{"If-None-Match": {before.Header.Get("ETag")}, "Accept-Encoding": {"identity"}})
	after.Body.Close()
	if after.StatusCode != 200 || after.Header.Get("ETag") == before.Header.Get("ETag") {
		t.Errorf("after a state change: %d, ETag %q (was %q)", after.StatusCode, after.Header.Get("ETag"), before.Header.Get("ETag"))
	}
}

// TestRenderedOncePerChange: many requests, one render; a change, one more.
func TestRenderedOncePerChange(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	for i := 0; i < 20; i++ {
		for _, p := range publicPaths {
			mustGet(t, e, p)
		}
	}
	if n := e.counter("geodnsd_web_renders_total"); n != 1 {
		t.Errorf("renders after 160 requests = %v, want 1", n)
	}
	e.site("dallas", false, t0.Add(time.Minute)) // several applies, one render when asked
	for i := 0; i < 5; i++ {
		mustGet(t, e, "/status.json")
	}
	if n := e.counter("geodnsd_web_renders_total"); n != 2 {
		t.Errorf("renders after a change = %v, want 2", n)
	}
	if n := e.counter("geodnsd_web_requests_total", "handler", "status", "code", "200"); n != 25 {
		t.Errorf("requests_total{handler=status,code=200} = %v, want 25", n)
	}
}

// TestNoState: a node with no state yet still answers, with empty lists.
func TestNoState(t *testing.T) {
	b := &staticBackend{v: &View{Quorum: false}}
	h, err := Handler(Options{Backend: b, Node: "ns9"})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, h)
	var s api.Status
	resp, err := http.Get(srv + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Node != "ns9" || s.Quorum || s.Services == nil || len(s.Services) != 0 {
		t.Errorf("status = %+v", s)
	}
}

// TestGzip: a client that accepts gzip gets the precompressed body, with its
// own ETag and Vary, and the same content.
func TestGzip(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	plain := e.req("GET", "/status.json", "", "", http.Header{"Accept-Encoding": {"identity"}})
	pb, _ := io.ReadAll(plain.Body)
	plain.Body.Close()
	for _, ae := range []string{"gzip", "br;q=1.0, gzip;q=0.5", "GZIP"} {
		resp := e.req("GET", "/status.json", "", "", http.Header{"Accept-Encoding": {ae}})
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", ae, err)
		}
		zb, _ := io.ReadAll(zr)
		resp.Body.Close()
		tag := resp.Header.Get("ETag")
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" ||
			!bytes.Equal(zb, pb) || tag == plain.Header.Get("ETag") || tag == "" {
			t.Errorf("Accept-Encoding %s: %v, ETag %q", ae, resp.Header, tag)
		}
		nm := e.req("GET", "/status.json", "", "", http.Header{"Accept-Encoding": {ae}, "If-None-Match": {tag}})
		nm.Body.Close()
		if nm.StatusCode != 304 {
			t.Errorf("gzip If-None-Match = %d", nm.StatusCode)
		}
	}
	no := e.req("GET", "/status.json", "", "", http.Header{"Accept-Encoding": {"gzip;q=0"}})
	no.Body.Close()
	if no.Header.Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
}
