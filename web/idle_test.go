package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// idleSecond moves the cluster one second on, as an idle cluster does: the
// leader's Tick, and each node's Beat every third second (staggered), with
// unchanged digests. Nothing a reader of the documents cares about changes.
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

// pollIdle simulates secs seconds of an idle cluster starting after start,
// with a client polling every public document every 5 s with If-None-Match
// (as Cache-Control max-age=5 invites). It returns how many polls were 304
// and how many 200.
func (e *env) pollIdle(start time.Time, secs int, tags map[string]string) (n304, n200 int) {
	e.t.Helper()
	for s := 1; s <= secs; s++ {
		e.idleSecond(start.Add(time.Duration(s)*time.Second), s)
		if s%5 != 0 {
			continue
		}
		for _, p := range publicPaths {
			resp := e.req("GET", p, "", "", http.Header{"If-None-Match": {tags[p]}, "Accept-Encoding": {"identity"}})
			resp.Body.Close()
			switch resp.StatusCode {
			case 304:
				n304++
			case 200:
				n200++
				tags[p] = resp.Header.Get("ETag")
			default:
				e.t.Fatalf("GET %s = %d", p, resp.StatusCode)
			}
		}
	}
	return n304, n200
}

// TestIdleRenders reports the renders and 304s over 60 simulated seconds of
// an idle cluster: Ticks every second, Beats every 3 s per node, polls
// every 5 s.
func TestIdleRenders(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	tags := map[string]string{}
	for _, p := range publicPaths {
		resp := e.req("GET", p, "", "", http.Header{"Accept-Encoding": {"identity"}})
		resp.Body.Close()
		tags[p] = resp.Header.Get("ETag")
	}
	r0 := e.counter("geodnsd_web_renders_total")
	n304, n200 := e.pollIdle(t0, 60, tags)
	t.Logf("60 s idle: %v renders, %d polls 304, %d polls 200", e.counter("geodnsd_web_renders_total")-r0, n304, n200)
}
