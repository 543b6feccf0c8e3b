package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

func decodeErr(t *testing.T, body string) api.ErrorBody {
	t.Helper()
	var b api.ErrorBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	return b
}

// TestAuth: 401 without or with a wrong token (counted), 403 for a read
// token on every command (counted, nothing changes), read token may read.
func TestAuth(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	resp := e.req("POST", "/api/v1/freeze", "", "", nil)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for _, tok := range []string{"wrong", opToken + "x", hashHex(opToken)} {
		code, body := e.do("POST", "/api/v1/freeze", tok, "")
		if b := decodeErr(t, body); code != 401 || b.Error != api.ReasonUnauthorized {
			t.Errorf("token %q: %d %+v", tok, code, b)
		}
	}
	code, _ := e.do("GET", "/api/v1/history", "", "")
	if code != 401 {
		t.Errorf("history without token = %d", code)
	}
	if n := e.counter("geodnsd_web_auth_failures_total", "reason", "missing"); n != 2 {
		t.Errorf("auth failures missing = %v, want 2", n)
	}
	if n := e.counter("geodnsd_web_auth_failures_total", "reason", "invalid"); n != 3 {
		t.Errorf("auth failures invalid = %v, want 3", n)
	}
	before := e.mem.View().Index
	bodies := map[string]string{"promote": `{"site":"losangeles","force":true,"reason":"x"}`,
		"failover": `{"service":"cas","site":"losangeles"}`, "drain": `{"site":"dallas"}`,
		"undrain": `{"site":"dallas"}`, "mode": `{"service":"cas","mode":"auto"}`,
		"mark-synced": `{"site":"dallas"}`, "freeze": "", "thaw": ""}
	for _, op := range api.Ops {
		code, body := e.do("POST", "/api/v1/"+op, readToken, bodies[op])
		if b := decodeErr(t, body); code != 403 || b.Error != api.ReasonForbidden || !strings.Contains(b.Message, `"bob"`) {
			t.Errorf("read token %s: %d %+v", op, code, b)
		}
	}
	if e.mem.View().Index != before {
		t.Error("a read token changed the state")
	}
	if n := e.counter("geodnsd_web_auth_failures_total", "reason", "forbidden"); n != float64(len(api.Ops)) {
		t.Errorf("auth failures forbidden = %v", n)
	}
	for _, p := range []string{"/api/v1/history", "/api/v1/nodes", "/api/v1/status"} {
		if code, body := e.do("GET", p, readToken, ""); code != 200 {
			t.Errorf("read token GET %s = %d %s", p, code, body)
		}
	}
	if _, err := Handler(Options{Tokens: []Token{{Name: "x", SHA256: "abc", Role: RoleRead}}}); err == nil ||
		!strings.Contains(err.Error(), "http.tokens[0].sha256") {
		t.Errorf("bad token hash: %v", err)
	}
	if _, err := Handler(Options{Tokens: []Token{{Name: "x", SHA256: hashHex("a"), Role: "admin"}}}); err == nil ||
		!strings.Contains(err.Error(), "http.tokens[0].role") {
		t.Errorf("bad role: %v", err)
	}
}

// TestCommands runs every command through the API and checks its effect on
// the replicated state and its audit entry.
func TestCommands(t *testing.T) {
	cases := []struct {
		op, body string
		check    func(t *testing.T, s failover.Status, r api.CommandResult)
	}{
		{"freeze", "", func(t *testing.T, s failover.Status, r api.CommandResult) {
			if !s.Frozen {
				t.Error("not frozen")
			}
		}},
		{"thaw", "", func(t *testing.T, s failover.Status, r api.CommandResult) {
			if s.Frozen {
				t.Error("still frozen")
			}
		}},
		{"mode", `{"service":"cas","mode":"auto","failback":"auto"}`, func(t *testing.T, s failover.Status, r api.CommandResult) {
			if p := s.Services[0].Policy; p.Failover != failover.Auto || p.Failback != failover.Auto {
				t.Errorf("policy = %+v", p)
			}
		}},
		{"failover", `{"service":"cas","site":"losangeles","route":"default","reason":"test"}`, func(t *testing.T, s failover.Status, r api.CommandResult) {
			if a := s.Services[0].Routes[0]; a.Active != "losangeles" || r.Epoch != 1 || a.Epoch != 1 {
				t.Errorf("route = %+v, result epoch %d", a, r.Epoch)
			}
			if len(r.Entries) != 1 || r.Entries[0].From != "dallas" || r.Entries[0].To != "losangeles" {
				t.Errorf("entries = %+v", r.Entries)
			}
		}},
		{"promote", `{"site":"dallas"}`, func(t *testing.T, s failover.Status, r api.CommandResult) {
			if a := s.Services[0].Routes[0]; a.Active != "dallas" || r.Epoch != 0 {
				t.Errorf("route = %+v, result epoch %d (promote is a site command)", a, r.Epoch)
			}
		}},
		{"drain", `{"site":"dallas"}`, func(t *testing.T, s failover.Status, r api.CommandResult) {
			if s.Sites[0].Admin != failover.Drained || s.Services[0].Routes[0].Active != "losangeles" {
				t.Errorf("dallas %s, active %s", s.Sites[0].Admin, s.Services[0].Routes[0].Active)
			}
		}},
		{"undrain", `{"site":"dallas"}`, func(t *testing.T, s failover.Status, r api.CommandResult) {
			if s.Sites[0].Admin != failover.AdminActive {
				t.Errorf("dallas %s", s.Sites[0].Admin)
			}
		}},
		{"mark-synced", `{"site":"dallas"}`, func(t *testing.T, s failover.Status, r api.CommandResult) {
			if s.Sites[0].Sync != failover.InSync {
				t.Errorf("dallas %s", s.Sites[0].Sync)
			}
		}},
	}
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	for i, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			e.clock.Set(t0.Add(time.Duration(i+1) * time.Minute))
			code, body := e.do("POST", "/api/v1/"+c.op, opToken, c.body)
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			var r api.CommandResult
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatal(err)
			}
			if r.Actor != "alice" || r.Applied != "leader" || r.Index != e.mem.View().Index || !strings.HasPrefix(r.Command, c.op) {
				t.Errorf("result = %+v", r)
			}
			s := e.mem.View().State.Status()
			c.check(t, s, r)
			last := s.History[len(s.History)-1]
			if last.Kind != failover.KindCommandEntry || last.What != c.op || last.Actor != "alice" ||
				!last.Time.Equal(t0.Add(time.Duration(i+1)*time.Minute)) {
				t.Errorf("audit entry = %+v", last)
			}
			if len(r.Entries) == 0 || r.Entries[len(r.Entries)-1].Seq != last.Seq {
				t.Errorf("result entries %+v do not end with %+v", r.Entries, last)
			}
		})
	}
	if n := e.counter("geodnsd_web_commands_total", "op", "promote", "result", "accepted"); n != 1 {
		t.Errorf("commands_total promote accepted = %v", n)
	}
}

// TestRefused409: promote of a resyncing site is refused naming the sync
// check and its value; --force with a reason goes through and is audited.
func TestRefused409(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.failedOverAndResyncing()
	before := e.mem.View().Index
	code, body := e.do("POST", "/api/v1/promote", opToken, `{"site":"dallas"}`)
	b := decodeErr(t, body)
	if code != 409 || b.Error != api.ReasonRefused || b.Check != "replication" ||
		b.Observed != "not_in_sync: copy_queue_length=12" || b.Command != "promote dallas" ||
		!strings.Contains(b.Message, "copy_queue_length=12") {
		t.Fatalf("refused promote: %d %+v", code, b)
	}
	if e.mem.View().Index != before {
		t.Error("a refused command was logged")
	}
	if n := e.counter("geodnsd_web_commands_total", "op", "promote", "result", "refused"); n != 1 {
		t.Errorf("commands_total refused = %v", n)
	}
	// Down site: the health check that reports it down.
	e.site("losangeles", false, t0.Add(4*time.Minute))
	code, body = e.do("POST", "/api/v1/failover", opToken, `{"service":"cas","site":"losangeles"}`)
	if b := decodeErr(t, body); code != 409 || b.Check != "https" || !strings.Contains(b.Observed, "connection refused") {
		t.Errorf("failover to a down site: %d %+v", code, b)
	}
	e.site("losangeles", true, t0.Add(5*time.Minute))

	e.clock.Set(t0.Add(6 * time.Minute))
	code, body = e.do("POST", "/api/v1/promote?wait=all", opToken, `{"site":"dallas","force":true,"reason":"data checked by hand"}`)
	if code != 200 {
		t.Fatalf("forced promote: %d %s", code, body)
	}
	var r api.CommandResult
	json.Unmarshal([]byte(body), &r)
	if r.Applied != "all" {
		t.Errorf("applied = %q", r.Applied)
	}
	s := e.mem.View().State.Status()
	last := s.History[len(s.History)-1]
	if !last.Forced || last.Actor != "alice" || last.Reason != "data checked by hand" || s.Services[0].Routes[0].Active != "dallas" {
		t.Errorf("forced promote audit = %+v, active %s", last, s.Services[0].Routes[0].Active)
	}
}

func TestInvalid422(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	cases := []struct{ path, body, want string }{
		{"/api/v1/promote", `{"site":"paris"}`, "paris"},
		{"/api/v1/mode", `{"service":"cas","mode":"sometimes"}`, "sometimes"},
		{"/api/v1/promote", `{"site":"dallas","force":true}`, "reason"},
		{"/api/v1/promote", `{"site":"dallas","colour":"red"}`, "colour"},
		{"/api/v1/promote", `{"site":`, "body"},
		{"/api/v1/promote", `{"site":"dallas"} {}`, "more than one"},
		{"/api/v1/freeze?wait=some", ``, "wait"},
		{"/api/v1/history?limit=0", ``, "limit"},
		{"/api/v1/history?limit=x", ``, "limit"},
		{"/api/v1/history?before=-1", ``, "before"},
	}
	for _, c := range cases {
		method := "POST"
		if strings.Contains(c.path, "history") {
			method = "GET"
		}
		code, body := e.do(method, c.path, opToken, c.body)
		b := decodeErr(t, body)
		if code != 422 || b.Error != api.ReasonInvalid || !strings.Contains(b.Message, c.want) {
			t.Errorf("%s %s: %d %+v, want 422 naming %q", c.path, c.body, code, b, c.want)
		}
	}
	code, body := e.do("POST", "/api/v1/promote", opToken, strings.Repeat(" ", maxCommandBody+1))
	if code != 413 {
		t.Errorf("huge body = %d %s", code, body)
	}
	code, body = e.do("POST", "/api/v1/reboot", opToken, "")
	if b := decodeErr(t, body); code != 404 || b.Error != api.ReasonNotFound {
		t.Errorf("unknown op = %d %+v", code, b)
	}
	code, body = e.do("GET", "/api/v1/promote", opToken, "")
	if b := decodeErr(t, body); code != 405 || b.Error != api.ReasonBadMethod {
		t.Errorf("GET command = %d %+v", code, b)
	}
}

func TestUnavailable503(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.mem.SetQuorum(false)
	code, body := e.do("POST", "/api/v1/freeze", opToken, "")
	if b := decodeErr(t, body); code != 503 || b.Error != api.ReasonUnavailable {
		t.Errorf("no quorum: %d %+v", code, b)
	}
	var s api.Status
	e.getJSON("/status.json", "", &s)
	if s.Quorum || s.Leader != "" {
		t.Errorf("status without quorum: quorum %v leader %q", s.Quorum, s.Leader)
	}
	if !strings.Contains(mustGet(t, e, "/"), `id="no-quorum"`) {
		t.Error("page does not say no quorum")
	}
	e.mem.SetQuorum(true)
	e.mem.WaitAllHook = func(ctx context.Context, index uint64) error {
		<-ctx.Done()
		return ctx.Err()
	}
	e2 := newEnvOn(t, e, func(o *Options) { o.CommandTimeout = 50 * time.Millisecond })
	code, body = e2.do("POST", "/api/v1/freeze?wait=all", opToken, "")
	if b := decodeErr(t, body); code != 503 || b.Error != api.ReasonTimeout || !strings.Contains(b.Message, "committed at index") {
		t.Errorf("wait=all timeout: %d %+v", code, b)
	}
	// A backend whose leader cannot be reached in time.
	h, _ := Handler(Options{Backend: &slowBackend{Memory: e.mem}, Tokens: testTokens, CommandTimeout: 20 * time.Millisecond})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/thaw", nil)
	req.Header.Set("Authorization", "Bearer "+opToken)
	h.ServeHTTP(rec, req)
	if b := decodeErr(t, rec.Body.String()); rec.Code != 503 || b.Error != api.ReasonTimeout {
		t.Errorf("submit timeout: %d %+v", rec.Code, b)
	}
}

// slowBackend never commits: Submit waits for its context.
type slowBackend struct{ *Memory }

func (s *slowBackend) Submit(ctx context.Context, _ failover.Command) (Applied, error) {
	<-ctx.Done()
	return Applied{}, ctx.Err()
}

// newEnvOn serves another handler over e's backend.
func newEnvOn(t *testing.T, e *env, opt func(*Options)) *env {
	t.Helper()
	o := Options{Backend: e.mem, Node: "ns1", Tokens: testTokens, Now: e.clock.Now, PublicRate: -1, AdminRate: -1}
	opt(&o)
	h, err := Handler(o)
	if err != nil {
		t.Fatal(err)
	}
	e2 := *e
	e2.h = h
	e2.srv = httptest.NewServer(h)
	t.Cleanup(e2.srv.Close)
	return &e2
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	for i := 0; i < 7; i++ {
		op := []string{"freeze", "thaw"}[i%2]
		if code, body := e.do("POST", "/api/v1/"+op, opToken, ""); code != 200 {
			t.Fatalf("%s: %d %s", op, code, body)
		}
	}
	var all []api.HistoryEntry
	before := uint64(0)
	pages := 0
	for {
		var p api.HistoryPage
		e.getJSON(fmt.Sprintf("/api/v1/history?limit=3&before=%d", before), readToken, &p)
		pages++
		all = append(all, p.Entries...)
		if p.Next == 0 {
			break
		}
		before = p.Next
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if pages != 3 || len(all) != 7 {
		t.Fatalf("%d pages, %d entries", pages, len(all))
	}
	for i, h := range all {
		if want := uint64(7 - i); h.Seq != want || h.Actor != "alice" {
			t.Errorf("entry %d = %+v, want seq %d", i, h, want)
		}
	}
	var p api.HistoryPage
	e.getJSON("/api/v1/history", readToken, &p)
	if len(p.Entries) != 7 || p.Next != 0 {
		t.Errorf("default page: %d entries, next %d", len(p.Entries), p.Next)
	}
}

func TestNodes(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.mem.SetApplied("ns3", 42)
	var n api.NodesReply
	e.getJSON("/api/v1/nodes", readToken, &n)
	if n.Leader != "ns1" || !n.Quorum || len(n.Nodes) != 6 || n.Nodes[2].AppliedIndex != 42 || !n.Nodes[0].Self ||
		!n.Nodes[0].Leader || n.Nodes[0].AppliedIndex != e.mem.View().Index || n.Nodes[5].ConfigDigest != "sha256:aaaa" {
		t.Errorf("nodes = %+v", n)
	}
}

// TestRateLimit: a client over its budget gets 429 with Retry-After and is
// counted; another address is not affected; time refills the bucket.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, func(o *Options) {
		o.PublicRate, o.PublicBurst = 1, 3
		o.AdminRate, o.AdminBurst = 1, 2
	})
	get := func(path, remote, tok string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = remote
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		e.h.ServeHTTP(rec, req)
		return rec
	}
	for i := 0; i < 3; i++ {
		if c := get("/status.json", "192.0.2.1:1000", "").Code; c != 200 {
			t.Fatalf("request %d = %d", i, c)
		}
	}
	rec := get("/api/v2/summary.json", "192.0.2.1:1001", "")
	if b := decodeErr(t, rec.Body.String()); rec.Code != 429 || b.Error != api.ReasonRateLimited || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("4th request: %d %+v Retry-After %q", rec.Code, b, rec.Header().Get("Retry-After"))
	}
	if c := get("/status.json", "192.0.2.2:1000", "").Code; c != 200 {
		t.Errorf("another client = %d", c)
	}
	// IPv6 clients share a bucket per /64.
	for i := 0; i < 3; i++ {
		get("/", fmt.Sprintf("[2001:db8::%d]:53", i+1), "")
	}
	if c := get("/", "[2001:db8::ff]:53", "").Code; c != 429 {
		t.Errorf("same /64 = %d, want 429", c)
	}
	if c := get("/", "[2001:db8:0:1::1]:53", "").Code; c != 200 {
		t.Errorf("other /64 = %d", c)
	}
	e.clock.Set(t0.Add(time.Second))
	if c := get("/status.json", "192.0.2.1:1000", "").Code; c != 200 {
		t.Errorf("after a second = %d", c)
	}
	if c := get("/status.json", "192.0.2.1:1000", "").Code; c != 429 {
		t.Errorf("second request after a second = %d", c)
	}
	if n := e.counter("geodnsd_web_rate_limited_total", "surface", "public"); n != 3 {
		t.Errorf("rate_limited public = %v, want 3", n)
	}
	for i := 0; i < 2; i++ {
		get("/api/v1/nodes", "192.0.2.9:1", readToken)
	}
	if c := get("/api/v1/nodes", "192.0.2.9:1", readToken).Code; c != 429 {
		t.Errorf("admin over budget = %d", c)
	}
	if c := get("/healthz", "192.0.2.1:1000", "").Code; c != 200 {
		t.Errorf("/healthz is rate limited: %d", c)
	}
}

func TestLimiterBounded(t *testing.T) {
	now := t0
	l := newLimiter(1, 1, func() time.Time { return now })
	l.maxClients = 4
	for i := 0; i < 10; i++ {
		l.allow(fmt.Sprintf("192.0.2.%d:1", i))
	}
	if len(l.m) > 4 {
		t.Errorf("%d buckets, max 4", len(l.m))
	}
}

// TestRefusalBlocker checks the fallback that finds check and value when
// the guard's error is not about the target site's own state.
func TestRefusalBlocker(t *testing.T) {
	err := &failover.CommandError{Command: "promote dallas", Refused: true, Msg: "dallas is not the first preference of any route"}
	if c, o := refusalBlocker(err, failover.Command{Op: failover.OpPromote, Site: "dallas"}, nil); c != "guard" || o != err.Msg {
		t.Errorf("unknown refusal: %q %q", c, o)
	}
	var ce error = blockingErr{}
	if c, o := refusalBlocker(ce, failover.Command{Op: failover.OpPromote, Site: "dallas"}, nil); c != "lag" || o != "300s" {
		t.Errorf("Blocking method: %q %q", c, o)
	}
}

type blockingErr struct{}

func (blockingErr) Error() string                      { return "refused" }
func (blockingErr) Blocking() (check, observed string) { return "lag", "300s" }

var _ http.Handler = (http.HandlerFunc)(nil)

func TestHalted(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	v := *e.mem.View()
	v.Halted = "entry 12: unknown kind 0x09"
	h, err := Handler(Options{Backend: &staticBackend{v: &v}, Tokens: testTokens})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, h)
	req, _ := http.NewRequest("POST", srv+"/api/v1/freeze", nil)
	req.Header.Set("Authorization", "Bearer "+opToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("command on a halted node = %d", resp.StatusCode)
	}
	resp, err = http.Get(srv + "/")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	io.Copy(&b, resp.Body)
	resp.Body.Close()
	if !strings.Contains(b.String(), `id="halted"`) || !strings.Contains(b.String(), "unknown kind 0x09") {
		t.Error("the page does not say the node halted")
	}
	var s api.Status
	resp, _ = http.Get(srv + "/status.json")
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if s.Halted != v.Halted {
		t.Errorf("status halted = %q", s.Halted)
	}
}

// TestRefusedDrain: a refused drain names the check of the site it would
// move to, or the route left without a site.
func TestRefusedDrain(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.site("losangeles", false, t0.Add(time.Minute))
	code, body := e.do("POST", "/api/v1/drain", opToken, `{"site":"dallas"}`)
	if b := decodeErr(t, body); code != 409 || b.Check != "route" || b.Observed != "cas/default has no other up, undrained site" {
		t.Errorf("drain with no standby: %d %+v", code, b)
	}
	e.site("losangeles", true, t0.Add(2*time.Minute))
	e.sync("losangeles", false, "lag=300s", t0.Add(2*time.Minute))
	code, body = e.do("POST", "/api/v1/drain", opToken, `{"site":"dallas"}`)
	if b := decodeErr(t, body); code != 409 || b.Check != "replication" || b.Observed != "not_in_sync: lag=300s" {
		t.Errorf("drain to a resyncing standby: %d %+v", code, b)
	}
}

// noEntries is a backend that, as a cluster does, does not return the
// entries a command added.
type noEntries struct{ *Memory }

func (b noEntries) Submit(ctx context.Context, c failover.Command) (Applied, error) {
	a, err := b.Memory.Submit(ctx, c)
	a.Entries = nil
	return a, err
}

func TestEntriesFoundInView(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e2 := newEnvOn(t, e, func(o *Options) { o.Backend = noEntries{e.mem} })
	code, body := e2.do("POST", "/api/v1/failover", opToken, `{"service":"cas","site":"losangeles","reason":"r"}`)
	var r api.CommandResult
	if err := json.Unmarshal([]byte(body), &r); code != 200 || err != nil {
		t.Fatalf("%d %v %s", code, err, body)
	}
	if len(r.Entries) != 1 || r.Entries[0].To != "losangeles" || r.Entries[0].Actor != "alice" {
		t.Errorf("entries = %+v", r.Entries)
	}
}
