package web

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// liClass returns the class of the <li> whose id is id.
func liClass(t *testing.T, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<li class="([a-z]*)" id="` + regexp.QuoteMeta(id) + `"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no <li id=%q> in the page", id)
	}
	return m[1]
}

func TestPage(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, func(o *Options) { o.PageRefresh = 7 * time.Second })
	resp := e.req("GET", "/", "", "", nil)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	page := mustGet(t, e, "/")
	for _, want := range []string{
		`<meta http-equiv="refresh" content="7">`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`id="service-cas"`, `cas.example.com., owa.example.com.`,
		`id="route-cas-default" data-condition="normal"`,
		`<code>192.0.2.10 192.0.2.11</code>`,
		`data-endpoint="dal1" data-health="up"`, `<code>192.0.2.10</code>`,
		`<td class="mono">sha256:aaaa</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// Self-contained: no script, no external stylesheet, image or font.
	for _, bad := range []string{"<script", "src=", `rel="stylesheet"`, "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("page has %q: it must need no other resource", bad)
		}
	}
	if strings.Count(page, `<span class="vote up"`) < 6*3 {
		t.Errorf("page shows %d up votes, want each node's on each endpoint", strings.Count(page, `<span class="vote up"`))
	}
	if c := liClass(t, page, "site-cas-default-dallas"); c != "g" {
		t.Errorf("dallas is %q while up and in sync, want g", c)
	}
	// Dallas's backends stop: its site goes red; the route stays on it in
	// manual mode and goes red once down_for has passed.
	e.site("dallas", false, t0.Add(time.Minute))
	page = mustGet(t, e, "/")
	if c := liClass(t, page, "site-cas-default-dallas"); c != "r" {
		t.Errorf("dallas is %q while down, want r", c)
	}
	if !strings.Contains(page, `data-endpoint="dal2" data-health="down"`) || !strings.Contains(page, `<span class="vote down"`) {
		t.Error("page does not show the down endpoint and its votes")
	}
	e.apply(failover.Tick{Time: t0.Add(2 * time.Minute)})
	page = mustGet(t, e, "/")
	if c := liClass(t, page, "route-cas-default"); c != "r" || !strings.Contains(page, "awaiting_operator") {
		t.Errorf("route is %q, want r (awaiting_operator)", c)
	}
	// Failed over, dallas back but resyncing: amber, and the page says what
	// blocks the fail-back.
	e.clock.Set(t0.Add(3 * time.Minute))
	if code, body := e.do("POST", "/api/v1/failover", opToken, `{"service":"cas","site":"losangeles","reason":"dallas flooded"}`); code != 200 {
		t.Fatal(code, body)
	}
	e.site("dallas", true, t0.Add(4*time.Minute))
	e.sync("dallas", false, "copy_queue_length=12", t0.Add(4*time.Minute))
	page = mustGet(t, e, "/")
	if c := liClass(t, page, "site-cas-default-dallas"); c != "a" {
		t.Errorf("dallas is %q while resyncing, want a", c)
	}
	if c := liClass(t, page, "route-cas-default"); c != "a" {
		t.Errorf("route is %q while failed over, want a", c)
	}
	if !strings.Contains(page, `fail-back to dallas blocked by <b>replication</b>: not_in_sync: copy_queue_length=12`) {
		t.Error("page does not say what blocks the fail-back")
	}
	if !strings.Contains(page, "Operator command failover by alice: cas/default dallas → losangeles (epoch 1): dallas flooded") {
		t.Error("page history lacks the failover")
	}
	// Text from the state is escaped.
	e.sync("dallas", false, `<b onload="x">`, t0.Add(5*time.Minute))
	if page = mustGet(t, e, "/"); strings.Contains(page, `<b onload`) || !strings.Contains(page, `&lt;b onload=&#34;x&#34;&gt;`) {
		t.Error("a reason from a probe is not escaped")
	}
}
