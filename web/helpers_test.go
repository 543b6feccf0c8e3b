package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/prometheus/client_golang/prometheus"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

var nodes6 = []string{"ns1", "ns2", "ns3", "ns4", "ns5", "ns6"}

// Tokens of the tests: alice may run commands, bob may only read.
const (
	opToken   = "op-secret-alice"
	readToken = "read-secret-bob"
)

func hashHex(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

var testTokens = []Token{
	{Name: "alice", SHA256: hashHex(opToken), Role: RoleOperator},
	{Name: "bob", SHA256: strings.ToUpper(hashHex(readToken)), Role: RoleRead},
}

// storySpec: cas on dallas with losangeles as standby, both with a
// replication sync check; six voters.
func storySpec(fo, fb failover.Mode) failover.Spec {
	return failover.Spec{
		Sites: []failover.SiteSpec{
			{Name: "dallas", SyncCheck: "replication", Endpoints: []failover.Endpoint{
				{Name: "dal1", Address: "192.0.2.10"}, {Name: "dal2", Address: "192.0.2.11"}}},
			{Name: "losangeles", SyncCheck: "replication", Endpoints: []failover.Endpoint{
				{Name: "lax1", Address: "198.51.100.10"}}},
		},
		Services: []failover.ServiceSpec{{
			Name:   "cas",
			Names:  []string{"cas.example.com.", "owa.example.com."},
			Routes: []failover.RouteSpec{{Name: "default", Sites: []string{"dallas", "losangeles"}}},
			Policy: failover.Policy{Failover: fo, Failback: fb, DownFor: 30 * time.Second, StableFor: 5 * time.Minute},
		}},
		Nodes:   nodes6,
		VoteTTL: time.Hour,
	}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

type env struct {
	t     testing.TB
	mem   *Memory
	reg   *prometheus.Registry
	h     http.Handler
	srv   *httptest.Server
	clock *clock
}

// newEnv serves the real handler over a Memory backend on a loopback
// httptest server, with the story spec and every node's verdicts up.
func newEnv(t testing.TB, fo, fb failover.Mode, opt func(*Options)) *env {
	t.Helper()
	s, err := failover.New(storySpec(fo, fb), t0)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, mem: NewMemory(s, "ns1"), reg: prometheus.NewRegistry(), clock: &clock{t: t0}}
	e.mem.SetTTL("cas", 30*time.Second)
	o := Options{Backend: e.mem, Node: "ns1", Registry: e.reg, Tokens: testTokens, Now: e.clock.Now,
		PublicRate: -1, AdminRate: -1}
	if opt != nil {
		opt(&o)
	}
	e.h, err = Handler(o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	e.allUp(t0)
	return e
}

func (e *env) apply(ev failover.Event) {
	e.t.Helper()
	if _, err := e.mem.Apply(ev); err != nil {
		e.t.Fatalf("apply %#v: %v", ev, err)
	}
}

// endpoint makes every node vote on one endpoint's https check.
func (e *env) endpoint(site, ep string, up bool, at time.Time) {
	e.t.Helper()
	reason := "200 OK"
	if !up {
		reason = "connect: connection refused"
	}
	for _, n := range nodes6 {
		e.apply(failover.Observation{Time: at, Node: n, Site: site, Endpoint: ep, Check: "https", Up: up, Reason: reason})
	}
}

func (e *env) site(site string, up bool, at time.Time) {
	e.t.Helper()
	eps := map[string][]string{"dallas": {"dal1", "dal2"}, "losangeles": {"lax1"}}[site]
	for _, ep := range eps {
		e.endpoint(site, ep, up, at)
	}
}

func (e *env) sync(site string, in bool, reason string, at time.Time) {
	e.t.Helper()
	for _, n := range nodes6 {
		e.apply(failover.SyncVerdict{Time: at, Node: n, Site: site, Check: "replication", InSync: in, Reason: reason})
	}
}

func (e *env) allUp(at time.Time) {
	e.t.Helper()
	for _, n := range nodes6 {
		e.apply(failover.Beat{Time: at, Node: n, Digest: "sha256:aaaa", Clock: at})
	}
	e.site("dallas", true, at)
	e.site("losangeles", true, at)
	e.sync("dallas", true, "lag=0s", at)
	e.sync("losangeles", true, "lag=0s", at)
}

// failedOverAndResyncing: dallas fails, the operator fails cas over to
// losangeles, dallas comes back but its replication is behind.
func (e *env) failedOverAndResyncing() {
	e.t.Helper()
	e.site("dallas", false, t0.Add(time.Minute))
	e.clock.Set(t0.Add(2 * time.Minute))
	if code, body := e.do("POST", "/api/v1/failover", opToken, `{"service":"cas","site":"losangeles","reason":"dallas flooded"}`); code != 200 {
		e.t.Fatalf("failover: %d %s", code, body)
	}
	e.site("dallas", true, t0.Add(3*time.Minute))
	e.sync("dallas", false, "copy_queue_length=12", t0.Add(3*time.Minute))
}

// do sends a request with a bearer token (none when tok is "").
func (e *env) do(method, path, tok, body string) (int, string) {
	e.t.Helper()
	resp := e.req(method, path, tok, body, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func (e *env) req(method, path, tok, body string, hdr http.Header) *http.Response {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// getJSON fetches path and decodes it into v.
func (e *env) getJSON(path, tok string, v any) {
	e.t.Helper()
	code, body := e.do("GET", path, tok, "")
	if code != 200 {
		e.t.Fatalf("GET %s = %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		e.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// staticBackend has one view and accepts no command.
type staticBackend struct{ v *View }

func (b *staticBackend) View() *View              { return b.v }
func (b *staticBackend) Changed() <-chan struct{} { return nil }
func (b *staticBackend) Submit(context.Context, failover.Command) (Applied, error) {
	return Applied{}, ErrUnavailable
}
func (b *staticBackend) WaitAll(ctx context.Context, _ uint64) error { return ctx.Err() }

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
