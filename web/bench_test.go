package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func benchEnv(b *testing.B) (*env, http.Handler) {
	b.Helper()
	e := newEnv(b, failover.Manual, failover.Manual, nil)
	return e, e.h
}

// BenchmarkStatusJSON serves /status.json from memory: 200 with the body,
// and 304 for a client that has it.
func BenchmarkStatusJSON(b *testing.B) {
	_, h := benchEnv(b)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/status.json", nil))
	etag := rec.Header().Get("ETag")
	b.Run("200", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest("GET", "/status.json", nil)
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
	b.Run("304", func(b *testing.B) {
		b.ReportAllocs()
		req := httptest.NewRequest("GET", "/status.json", nil)
		req.Header.Set("If-None-Match", etag)
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 304 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkRender renders every public document for the story state: the
// cost paid once per state change a reader cares about ("full"), and the
// cost of a state change that moves only volatile fields ("volatile": the
// view is read and fingerprinted, the documents kept).
func BenchmarkRender(b *testing.B) {
	e, _ := benchEnv(b)
	r := &renderer{o: &Options{Backend: e.mem, Node: "ns1", PageName: "geodnsd", HistoryLen: 20,
		PageRefresh: 10e9, DocRefresh: 30e9, Now: e.clock.Now}, m: newMetrics(prometheus.NewRegistry())}
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.update(nil)
		}
	})
	b.Run("volatile", func(b *testing.B) {
		prev := r.update(nil)
		renders := testutil.ToFloat64(r.m.renders)
		b.ReportAllocs()
		for b.Loop() {
			r.update(prev)
		}
		if n := testutil.ToFloat64(r.m.renders); n != renders {
			b.Fatalf("rendered again %v times", n-renders)
		}
	})
}

// BenchmarkStatusJSONHTTP polls /status.json over loopback HTTP with
// keep-alive from parallel clients: requests per second is 1e9 / ns/op.
func BenchmarkStatusJSONHTTP(b *testing.B) {
	e, _ := benchEnv(b)
	for _, c := range []struct{ name, inm string }{{"200", ""}, {"304", "etag"}} {
		b.Run(c.name, func(b *testing.B) {
			resp, err := e.srv.Client().Get(e.srv.URL + "/status.json")
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			etag := resp.Header.Get("ETag")
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest("GET", e.srv.URL+"/status.json", nil)
				if c.inm != "" {
					req.Header.Set("If-None-Match", etag)
				}
				for pb.Next() {
					resp, err := cl.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// BenchmarkIdleSecond is one second of an idle cluster with a busy poller:
// the leader's Tick is applied and /status.json is asked for with the ETag
// the poller holds. "per-change" renders on every state change (DocRefresh
// < 0, the old behaviour); "refresh-30s" keeps the documents until 30
// simulated seconds have passed. ns/op includes applying the Tick to the
// in-memory backend (a state clone), the same in both.
func BenchmarkIdleSecond(b *testing.B) {
	for _, c := range []struct {
		name    string
		refresh time.Duration
	}{{"per-change", -1}, {"refresh-30s", 30 * time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			e := newEnv(b, failover.Auto, failover.Manual, func(o *Options) { o.DocRefresh = c.refresh })
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, httptest.NewRequest("GET", "/status.json", nil))
			etag := rec.Header().Get("ETag")
			at, n304 := t0, 0
			b.ReportAllocs()
			for b.Loop() {
				at = at.Add(time.Second)
				e.clock.Set(at)
				e.apply(failover.Tick{Time: at})
				req := httptest.NewRequest("GET", "/status.json", nil)
				req.Header.Set("If-None-Match", etag)
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, req)
				if w.Code == 304 {
					n304++
				}
				etag = w.Header().Get("ETag")
			}
			b.ReportMetric(float64(n304)/float64(b.N), "304/op")
		})
	}
}
