package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scripted is a fake probe that succeeds or fails as its script says, one
// entry per call (the last entry repeats), and records when it was called.
type scripted struct {
	mu     sync.Mutex
	script []bool
	calls  int
	starts []time.Time
}

func (s *scripted) probe(ctx context.Context, t Target) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.script[min(s.calls, len(s.script)-1)]
	s.calls++
	s.starts = append(s.starts, time.Now())
	if ok {
		return Result{Detail: fmt.Sprintf("call %d ok", s.calls)}
	}
	return Result{Err: fmt.Errorf("call %d failed", s.calls)}
}

func (s *scripted) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.starts)
}

// recorder collects observations.
type recorder struct {
	mu  sync.Mutex
	obs []Observation
}

func (r *recorder) add(o Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

func (r *recorder) get() []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.obs)
}

func (r *recorder) verdicts() []Verdict {
	var v []Verdict
	for _, o := range r.get() {
		v = append(v, o.Verdict)
	}
	return v
}

func testCheck(name string, interval time.Duration, rise, fall int, p ProbeFunc) Check {
	return Check{
		Key:      Key{Site: "dallas", Endpoint: "dal1", Check: name},
		Type:     "tcp",
		Target:   Target{Site: "dallas", Endpoint: "dal1", Host: "127.0.0.1", Port: 1},
		Interval: interval, Timeout: interval * 8 / 10,
		Rise: rise, Fall: fall,
		Probe: p,
		Spec:  name,
	}
}

// running starts s.Run in the bubble and returns a stop function that ends
// it and waits for Run to return.
func running(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func newTestScheduler(t *testing.T, opts Options, checks ...Check) *Scheduler {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(checks); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRiseFall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 5 * time.Second
		// rise 2, fall 3: S S → up; F F (no change) S; F F F → down; S → nothing; S S → up.
		p := &scripted{script: []bool{true, true, false, false, true, false, false, false, true, false, true, true}}
		var rec recorder
		c := testCheck("owa", interval, 2, 3, p.probe)
		s := newTestScheduler(t, Options{OnChange: rec.add}, c)
		if st := s.Snapshot(); st[0].Verdict != Unknown || !st[0].Since.IsZero() {
			t.Errorf("before any probe: %+v, want unknown", st[0])
		}
		start := time.Now()
		stop := running(t, s)
		time.Sleep(offset(c.Key, interval) + 12*interval - time.Nanosecond)
		synctest.Wait()
		stop()

		want := []Verdict{Up, Down, Up}
		if got := rec.verdicts(); !slices.Equal(got, want) {
			t.Fatalf("verdicts %v, want %v", got, want)
		}
		obs := rec.get()
		// Calls are numbered from 1 and run at start+offset+(n-1)*interval.
		at := func(n int) time.Time { return start.Add(offset(c.Key, interval) + time.Duration(n-1)*interval) }
		for i, n := range []int{2, 8, 12} {
			if !obs[i].Time.Equal(at(n)) {
				t.Errorf("observation %d at %v, want at call %d (%v)", i, obs[i].Time.Sub(start), n, at(n).Sub(start))
			}
		}
		if obs[1].Reason != "3 consecutive failures: call 8 failed" || obs[0].Reason != "2 consecutive successes: call 2 ok" {
			t.Errorf("reasons %q, %q", obs[0].Reason, obs[1].Reason)
		}
		if o := obs[0]; o.Site != "dallas" || o.Endpoint != "dal1" || o.Check != "owa" {
			t.Errorf("observation %+v", o)
		}
		times := p.times()
		if len(times) != 12 {
			t.Fatalf("%d probes, want 12", len(times))
		}
		for i, tm := range times {
			if !tm.Equal(at(i + 1)) {
				t.Errorf("probe %d at %v, want %v", i+1, tm.Sub(start), at(i+1).Sub(start))
			}
		}
		st := s.Snapshot()[0]
		if st.Verdict != Up || st.Probes != 12 || len(st.History) != 10 || st.History[9].Reason != "call 12 ok" || st.History[0].Reason != "call 3 failed" {
			t.Errorf("snapshot %+v", st)
		}
	})
}

// model is the rise/fall rule written the plain way, to check the scheduler against.
func model(results []bool, rise, fall int) []Verdict {
	var out []Verdict
	v, run := Unknown, 0
	for i, ok := range results {
		if i > 0 && ok != results[i-1] {
			run = 0
		}
		run++
		switch {
		case ok && v != Up && run == rise:
			v = Up
			out = append(out, v)
		case !ok && v != Down && run == fall:
			v = Down
			out = append(out, v)
		}
	}
	return out
}

func TestFlapping(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]bool, 400)
	for i := range random {
		random[i] = rng.IntN(2) == 0
	}
	alternating := []bool{true, true} // up, then fail, succeed, fail, ...
	for range 200 {
		alternating = append(alternating, false, true)
	}
	cases := []struct {
		name       string
		script     []bool
		rise, fall int
		want       int // number of verdict changes; -1: whatever the model says
	}{
		{"alternating after up: no change", alternating, 2, 3, 1},
		{"alternating with rise 1 fall 1: every probe", alternating[2:22], 1, 1, 20},
		{"random 50%", random, 2, 3, -1},
		{"random 50%, rise 3 fall 2", random, 3, 2, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const interval = time.Second
				p := &scripted{script: tc.script}
				var rec recorder
				c := testCheck("flap", interval, tc.rise, tc.fall, p.probe)
				s := newTestScheduler(t, Options{OnChange: rec.add}, c)
				stop := running(t, s)
				time.Sleep(offset(c.Key, interval) + time.Duration(len(tc.script)-1)*interval + interval/2)
				synctest.Wait()
				stop()
				want := model(tc.script, tc.rise, tc.fall)
				got := rec.verdicts()
				if tc.want >= 0 && len(want) != tc.want {
					t.Fatalf("model gives %d changes, the case says %d", len(want), tc.want)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%d changes %v\nwant %d: %v", len(got), got, len(want), want)
				}
				if len(p.times()) != len(tc.script) {
					t.Errorf("%d probes, want %d", len(p.times()), len(tc.script))
				}
			})
		})
	}
}

func TestJitterSpreadsStarts(t *testing.T) {
	const n, interval = 200, 10 * time.Second
	firsts := func() []time.Duration {
		var out []time.Duration
		synctest.Test(t, func(t *testing.T) {
			var mu sync.Mutex
			start := time.Now()
			first := map[string]time.Duration{}
			var checks []Check
			for i := range n {
				name := fmt.Sprintf("c%d", i)
				checks = append(checks, testCheck(name, interval, 1, 1, func(ctx context.Context, t Target) Result {
					mu.Lock()
					defer mu.Unlock()
					if _, ok := first[name]; !ok {
						first[name] = time.Since(start)
					}
					return Result{}
				}))
			}
			s := newTestScheduler(t, Options{}, checks...)
			stop := running(t, s)
			time.Sleep(interval)
			synctest.Wait()
			stop()
			for i := range n {
				d, ok := first[fmt.Sprintf("c%d", i)]
				if !ok {
					t.Fatalf("c%d did not run within its first interval", i)
				}
				out = append(out, d)
			}
		})
		return out
	}
	a, b := firsts(), firsts()
	if !slices.Equal(a, b) {
		t.Error("start offsets differ between two runs: jitter is not deterministic")
	}
	// Ten buckets of one second: each should hold about n/10 starts.
	var buckets [10]int
	for _, d := range a {
		buckets[d/time.Second]++
	}
	for i, c := range buckets {
		if c < n/10/3 {
			t.Errorf("bucket %d holds %d starts of %d: %v", i, c, n, buckets)
		}
	}
}

func TestSlowCheckDoesNotDelayOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast := &scripted{script: []bool{true}}
		var slowRuns, concurrent, maxConcurrent atomic.Int32
		slow := func(ctx context.Context, t Target) Result {
			// Ignores its deadline: runs 12 s at an interval of 5 s.
			n := concurrent.Add(1)
			defer concurrent.Add(-1)
			if n > maxConcurrent.Load() {
				maxConcurrent.Store(n)
			}
			slowRuns.Add(1)
			time.Sleep(12 * time.Second)
			return Result{}
		}
		reg := prometheus.NewRegistry()
		fc := testCheck("fast", time.Second, 1, 1, fast.probe)
		sc := testCheck("slow", 5*time.Second, 1, 1, slow)
		var rec recorder
		s := newTestScheduler(t, Options{Registry: reg, MaxConcurrent: 2, OnChange: rec.add}, fc, sc)
		start := time.Now()
		stop := running(t, s)
		time.Sleep(60 * time.Second)
		synctest.Wait()
		stop()

		times := fast.times()
		if len(times) < 59 {
			t.Fatalf("fast check ran %d times in 60 s", len(times))
		}
		for i, tm := range times {
			if want := start.Add(offset(fc.Key, time.Second) + time.Duration(i)*time.Second); !tm.Equal(want) {
				t.Fatalf("fast probe %d started %v late", i, tm.Sub(want))
			}
		}
		if maxConcurrent.Load() != 1 {
			t.Errorf("the slow check ran %d times at once", maxConcurrent.Load())
		}
		// Each run takes 12 s: it starts at o, o+12, ... o+48 (o < 5 s, its
		// offset), each time in the latest slot that has begun: slots 0, 2, 4,
		// 7 and 9 run (late by 0, 2, 4, 1 and 3 s); 1, 3, 5, 6 and 8 are skipped.
		if n := slowRuns.Load(); n != 5 {
			t.Errorf("slow check ran %d times in 60 s, want 5", n)
		}
		if skipped := testutil.ToFloat64(s.m.skipped); skipped != 5 {
			t.Errorf("skipped = %v, want the missed slots counted", skipped)
		}
		st := s.Snapshot()
		if st[1].Check != "slow" || st[1].Verdict != Down || !strings.Contains(st[1].Reason, "longer than the timeout of 4s") {
			t.Errorf("slow check: %+v, want down for overrunning its timeout", st[1])
		}
	})
}

func TestConcurrencyIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var now, most atomic.Int32
		probe := func(ctx context.Context, t Target) Result {
			n := now.Add(1)
			defer now.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-ctx.Done() // every probe runs to its timeout
			return Result{Err: ctx.Err()}
		}
		var checks []Check
		for i := range 50 {
			checks = append(checks, testCheck(fmt.Sprintf("c%d", i), time.Second, 1, 1, probe))
		}
		s := newTestScheduler(t, Options{MaxConcurrent: 3}, checks...)
		stop := running(t, s)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		stop()
		if m := most.Load(); m != 3 {
			t.Errorf("at most %d probes at once, want 3", m)
		}
	})
}

func TestPanicIsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		c := testCheck("boom", time.Second, 1, 2, func(ctx context.Context, t Target) Result { panic("oops") })
		s := newTestScheduler(t, Options{OnChange: rec.add}, c)
		stop := running(t, s)
		time.Sleep(offset(c.Key, time.Second) + 2*time.Second)
		synctest.Wait()
		stop()
		obs := rec.get()
		if len(obs) != 1 || obs[0].Verdict != Down || obs[0].Reason != "2 consecutive failures: probe panicked: oops" {
			t.Errorf("observations %+v", obs)
		}
		if n := testutil.ToFloat64(s.m.panics); n != 3 {
			t.Errorf("panics = %v, want 3", n)
		}
	})
}

func TestReloadKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		mk := func(name, spec string, p *scripted) Check {
			c := testCheck(name, interval, 2, 2, p.probe)
			c.Spec = spec
			return c
		}
		pa, pb, pc, pd := &scripted{script: []bool{true}}, &scripted{script: []bool{true}}, &scripted{script: []bool{true}}, &scripted{script: []bool{true}}
		var rec recorder
		reg := prometheus.NewRegistry()
		s := newTestScheduler(t, Options{OnChange: rec.add, Registry: reg},
			mk("a", "a1", pa), mk("b", "b1", pb), mk("d", "d1", pd))
		stop := running(t, s)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		before := map[string]Status{}
		for _, st := range s.Snapshot() {
			before[st.Check] = st
			if st.Verdict != Up {
				t.Fatalf("%s: %v before the reload", st.Check, st.Verdict)
			}
		}
		reloadAt := time.Now()

		// a: unchanged (a new probe function from a new compile, same spec);
		// b: a different probe that fails; c: new; d: removed.
		pb2 := &scripted{script: []bool{false}}
		if err := s.Update([]Check{mk("a", "a1", &scripted{script: []bool{false}}), mk("b", "b2", pb2), mk("c", "c1", pc)}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		after := map[string]Status{}
		for _, st := range s.Snapshot() {
			after[st.Check] = st
		}
		if _, ok := after["d"]; ok || len(after) != 3 {
			t.Errorf("after reload: %v", after)
		}
		if a := after["a"]; a.Verdict != Up || !a.Since.Equal(before["a"].Since) || a.Probes != before["a"].Probes {
			t.Errorf("a changed by the reload: %+v", a)
		}
		if b := after["b"]; b.Verdict != Up || b.Successes != 0 || b.Probes != before["b"].Probes {
			t.Errorf("b: %+v, want its verdict kept and its counts reset", b)
		}
		if c := after["c"]; c.Verdict != Unknown {
			t.Errorf("c: %+v, want unknown", c)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()

		if len(pa.times()) < 9 {
			t.Errorf("a ran %d times: its schedule was interrupted", len(pa.times()))
		}
		ta := pa.times()
		for i := 1; i < len(ta); i++ { // a's schedule did not move
			if d := ta[i].Sub(ta[i-1]); d != interval {
				t.Errorf("a's probes %d and %d are %v apart", i-1, i, d)
			}
		}
		var got []string
		for _, o := range rec.get() {
			if o.Time.After(reloadAt) || o.Reason == "removed from configuration" {
				got = append(got, o.Check+":"+o.Verdict.String())
			}
		}
		if len(got) > 1 {
			slices.Sort(got[1:]) // b and c change in the order of their offsets
		}
		want := []string{"d:unknown", "b:down", "c:up"}
		if !slices.Equal(got, want) {
			t.Errorf("observations since the reload %v, want %v", got, want)
		}
		if n := testutil.CollectAndCount(reg, "geodnsd_health_verdict"); n != 3 {
			t.Errorf("%d verdict series, want 3 (the removed check's deleted)", n)
		}
	})
}

func TestUpdateRefusesBadChecks(t *testing.T) {
	p := (&scripted{script: []bool{true}}).probe
	ok := testCheck("a", time.Second, 1, 1, p)
	noProbe := ok
	noProbe.Probe = nil
	zero := ok
	zero.Interval = 0
	cases := map[string][]Check{
		"duplicate": {ok, ok},
		"no probe":  {noProbe},
		"interval":  {zero},
	}
	for name, checks := range cases {
		s, _ := New(Options{})
		if err := s.Update(checks); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if len(s.Snapshot()) != 0 {
			t.Errorf("%s: a refused update changed the checks", name)
		}
	}
}

func TestRunStopsCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Int32
		probe := func(ctx context.Context, t Target) Result {
			<-ctx.Done()
			if errors.Is(ctx.Err(), context.Canceled) {
				cancelled.Add(1)
			}
			return Result{Err: ctx.Err()}
		}
		var checks []Check
		for i := range 20 {
			checks = append(checks, testCheck(fmt.Sprintf("c%d", i), 10*time.Second, 100, 100, probe))
		}
		var rec recorder
		s := newTestScheduler(t, Options{OnChange: rec.add}, checks...)
		stop := running(t, s)
		time.Sleep(10 * time.Second) // every check has started; some probes are in flight
		synctest.Wait()
		stop() // returns only when every loop has returned; synctest fails on leftovers
		if cancelled.Load() == 0 {
			t.Error("no probe saw its context cancelled")
		}
		st := s.Snapshot()
		var probes uint64
		for _, x := range st {
			probes += x.Probes
		}
		if probes != 20-uint64(cancelled.Load()) {
			t.Errorf("%d results recorded, %d probes cancelled: a cancelled probe must not count", probes, cancelled.Load())
		}
		if err := s.Run(t.Context()); err == nil {
			t.Error("Run ran twice")
		}
	})
}

// TestSyncCheckReadsChange: a sync check whose verdict holds reports again
// when the value it reads changes (the replication page was unreachable,
// then answers 12 behind, then 3 behind), and not when it reads the same;
// other checks report verdict changes only.
func TestSyncCheckReadsChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 5 * time.Second
		reads := []string{"connection refused", "connection refused", "items_behind = 12", "items_behind = 12", "items_behind = 3", "ok"}
		var mu sync.Mutex
		calls := 0
		probe := func(ctx context.Context, _ Target) Result {
			mu.Lock()
			defer mu.Unlock()
			r := reads[min(calls, len(reads)-1)]
			calls++
			if r == "ok" {
				return Result{Detail: "items_behind = 0"}
			}
			return Result{Err: errors.New(r)}
		}
		syncCheck := testCheck("sync", interval, 1, 1, probe)
		syncCheck.Sync, syncCheck.Endpoint = true, ""
		plain := testCheck("web", interval, 1, 1, probe)
		var rec recorder
		s := newTestScheduler(t, Options{OnChange: rec.add}, syncCheck)
		stop := running(t, s)
		time.Sleep(offset(syncCheck.Key, interval) + 5*interval + interval/2)
		synctest.Wait()
		stop()
		var got []string
		for _, o := range rec.get() {
			got = append(got, o.Verdict.String()+": "+o.Reason)
		}
		want := []string{
			"not_in_sync: 1 consecutive failure: connection refused",
			"not_in_sync: items_behind = 12",
			"not_in_sync: items_behind = 3",
			"in_sync: 1 consecutive success: items_behind = 0",
		}
		if !slices.Equal(got, want) {
			t.Errorf("sync check observations:\n%q\nwant\n%q", got, want)
		}

		// The same reads on a plain check: verdict changes only.
		calls = 0
		var rec2 recorder
		s2 := newTestScheduler(t, Options{OnChange: rec2.add}, plain)
		stop2 := running(t, s2)
		time.Sleep(offset(plain.Key, interval) + 5*interval + interval/2)
		synctest.Wait()
		stop2()
		if v := rec2.verdicts(); !slices.Equal(v, []Verdict{Down, Up}) {
			t.Errorf("plain check verdicts %v, want [down up]", v)
		}
	})
}
