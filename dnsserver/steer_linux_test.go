//go:build linux

package dnsserver

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestSteerProgram: over real sockets, the group's program sends every
// datagram to the first socket while one is used, and spreads them over
// both by message ID when two are, even from one client socket: the
// per-reader query counters say which socket answered.
func TestSteerProgram(t *testing.T) {
	s := startServer(t, Options{Listen: loopbacks[:1], SocketsPerAddress: 2}, false)
	s.coll.mu.Lock()
	var sets []*counters
	for _, c := range s.coll.sets {
		if c.proto == protoUDP {
			sets = append(sets, c)
		}
	}
	s.coll.mu.Unlock()
	if len(sets) != 2 {
		t.Fatalf("%d UDP readers, want 2", len(sets))
	}
	st := (*s.coll.steers.Load())[0]
	answered := func() [2]uint64 {
		var n [2]uint64
		for i, c := range sets {
			n[i] = c.histCount.Load()
		}
		return n
	}
	// send asks count queries from one client socket (one 4-tuple, which
	// the kernel's own hash would send to one socket), each with a random
	// message ID, and returns how many each server socket answered.
	send := func(count int) [2]uint64 {
		t.Helper()
		before := answered()
		cl := &dns.Client{Net: "udp", Timeout: ioBound}
		conn, err := cl.Dial(s.UDPAddrs()[0].String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for range count {
			m := new(dns.Msg)
			m.SetQuestion("www.example.com.", dns.TypeA)
			m.Id = uint16(rand.IntN(1 << 16))
			if _, _, err := cl.ExchangeWithConn(m, conn); err != nil {
				t.Fatal(err)
			}
		}
		// A reader counts a batch after sending its replies: wait for the
		// last count.
		deadline := time.Now().Add(ioBound)
		for {
			after := answered()
			got := [2]uint64{after[0] - before[0], after[1] - before[1]}
			if got[0]+got[1] >= uint64(count) || time.Now().After(deadline) {
				return got
			}
			time.Sleep(time.Millisecond)
		}
	}
	if got := st.used.Load(); got != 1 {
		t.Fatalf("sockets used at start = %d, want 1", got)
	}
	if got := send(200); got != [2]uint64{200, 0} {
		t.Errorf("one socket used: answered per socket %v, want [200 0]", got)
	}
	if err := st.set(2); err != nil {
		t.Fatal(err)
	}
	got := send(400)
	if got[0]+got[1] != 400 || got[0] < 100 || got[1] < 100 {
		t.Errorf("two sockets used: answered per socket %v, want 400 spread over both (by message ID)", got)
	}
	if err := st.set(1); err != nil {
		t.Fatal(err)
	}
	if got := send(100); got != [2]uint64{100, 0} {
		t.Errorf("back to one socket: answered per socket %v, want [100 0]", got)
	}
	if v := metricValue(t, s.opts.Registry, "geodnsd_dns_udp_sockets_steered", map[string]string{"listen": s.UDPAddrs()[0].String()}); v != 1 {
		t.Errorf("geodnsd_dns_udp_sockets_steered = %v, want 1", v)
	}
}

// steerSim drives adjust with windows of a given rate and backlog, as the
// readers would, with the program change recorded instead of attached.
type steerSim struct {
	t       *testing.T
	st      *steer
	now     time.Time
	applied []int
}

func newSteerSim(t *testing.T, n int) *steerSim {
	sim := &steerSim{t: t, now: time.Unix(1e9, 0)}
	sim.st = &steer{n: n, log: func(string, ...any) {}}
	sim.st.apply = func(k int) error { sim.applied = append(sim.applied, k); return nil }
	sim.st.used.Store(1)
	return sim
}

// simWindow is the span of one simulated window.
const simWindow = 10 * time.Millisecond

// window ends a window of simWindow at rate datagrams/s; backlog: every
// batch was full.
func (sim *steerSim) window(rate float64, backlog bool) {
	start := sim.now
	sim.now = sim.now.Add(simWindow)
	full := uint64(0)
	if backlog {
		full = steerWindow
	}
	sim.st.adjust(start, sim.now, full, uint64(rate*simWindow.Seconds()))
}

// windows ends n windows of the same kind.
func (sim *steerSim) windows(n int, rate float64, backlog bool) {
	for range n {
		sim.window(rate, backlog)
	}
}

// Windows a backlog takes to start a trial (the ramp window, then
// minBefore), and windows a trial lasts.
var (
	toTrial   = 1 + int(minBefore/simWindow)
	trialSpan = max(trialWindows, int(minTrial/simWindow))
)

func (sim *steerSim) used() int { return int(sim.st.used.Load()) }

// untilTrial ends backlogged windows at rate until a trial starts, at most
// maxBackoff's worth, and returns how many it took.
func (sim *steerSim) untilTrial(rate float64) int {
	sim.t.Helper()
	for n := 1; n <= int(maxBackoff/simWindow)+toTrial+1; n++ {
		sim.window(rate, true)
		if sim.st.trial.on {
			return n
		}
	}
	sim.t.Fatalf("no trial within %v of backlog", maxBackoff)
	return 0
}

// TestSteerTrials: a backlog leads to a trial; the trial's outcome depends
// on the rate it gave; undone trials back off, doubling; calm narrows.
func TestSteerTrials(t *testing.T) {
	t.Run("widening that raises the rate stays", func(t *testing.T) {
		sim := newSteerSim(t, 4)
		sim.windows(toTrial-1, 100e3, true)
		if sim.used() != 1 {
			t.Fatalf("after %v of backlog: %d sockets, want 1 (a trial needs the ramp window and %v)", time.Duration(toTrial-1)*simWindow, sim.used(), minBefore)
		}
		sim.window(100e3, true)
		if sim.used() != 2 {
			t.Fatalf("after the ramp and %v of backlog: %d sockets, want 2", minBefore, sim.used())
		}
		sim.windows(trialSpan-1, 150e3, true)
		if sim.used() != 2 || !sim.st.trial.on {
			t.Fatalf("trial ended early: %d sockets, on %v", sim.used(), sim.st.trial.on)
		}
		sim.window(150e3, true)
		if sim.used() != 2 || sim.st.trial.on {
			t.Fatalf("after a trial at 1.5x the rate: %d sockets (trial on %v), want 2 kept", sim.used(), sim.st.trial.on)
		}
		// Still backlogged: no trial before minBackoff, then one that doubles again.
		sim.windows(int(minBackoff/simWindow)-1, 150e3, true)
		if sim.used() != 2 {
			t.Fatalf("a trial started before minBackoff: %d sockets", sim.used())
		}
		sim.windows(1+toTrial, 150e3, true)
		if sim.used() != 4 {
			t.Fatalf("after minBackoff with a backlog: %d sockets, want 4", sim.used())
		}
	})
	t.Run("the ramp of a burst is not the rate before", func(t *testing.T) {
		sim := newSteerSim(t, 2)
		sim.window(10e3, true) // the burst's first window: slow
		sim.windows(toTrial-1, 100e3, true)
		if !sim.st.trial.on || sim.st.trial.before != 100e3 {
			t.Fatalf("trial %v with rate before %v, want a trial against 100000", sim.st.trial.on, sim.st.trial.before)
		}
		sim.windows(trialSpan, 105e3, true)
		if sim.used() != 1 {
			t.Fatalf("widening kept at +5%% over the steady rate: %d sockets", sim.used())
		}
	})
	t.Run("widening that does not raise the rate is undone and backs off", func(t *testing.T) {
		sim := newSteerSim(t, 2)
		wait := time.Duration(0)
		for round := range 5 {
			from := sim.now
			n := sim.untilTrial(100e3)
			if got := sim.now.Sub(from); got < wait || got > wait+time.Duration(toTrial+1)*simWindow {
				t.Fatalf("round %d: trial %v after the last ended, want the backoff %v and at most %v more", round, got, wait, time.Duration(toTrial+1)*simWindow)
			}
			if sim.used() != 2 || n == 0 {
				t.Fatalf("round %d: trial on %d sockets", round, sim.used())
			}
			sim.windows(trialSpan, 105e3, true) // +5 %: not enough
			if sim.used() != 1 || sim.st.trial.on {
				t.Fatalf("round %d: trial at +5%% kept (%d sockets)", round, sim.used())
			}
			wait = min(max(2*wait, minBackoff), maxBackoff)
			if sim.st.backoff != wait {
				t.Fatalf("round %d: backoff %v, want %v", round, sim.st.backoff, wait)
			}
		}
		for range 10 {
			sim.untilTrial(100e3)
			sim.windows(trialSpan, 100e3, true)
		}
		if sim.st.backoff != maxBackoff {
			t.Errorf("backoff %v, want the cap %v", sim.st.backoff, maxBackoff)
		}
		// A backlog after resetAfter without one starts afresh.
		sim.windows(3, 50e3, false)
		sim.now = sim.now.Add(resetAfter)
		sim.windows(toTrial, 100e3, true)
		if sim.used() != 2 {
			t.Errorf("a backlog %v after the last: %d sockets, want a trial at once (backoff %v)", resetAfter, sim.used(), sim.st.backoff)
		}
	})
	t.Run("narrowing that keeps the rate stays", func(t *testing.T) {
		sim := newSteerSim(t, 2)
		sim.windows(toTrial, 100e3, true)
		sim.windows(trialSpan, 200e3, true) // widening doubles the rate: kept
		if sim.used() != 2 {
			t.Fatalf("%d sockets, want 2", sim.used())
		}
		sim.windows(int(minBackoff/simWindow)+toTrial, 200e3, true) // all sockets used: the trial narrows
		if sim.used() != 1 || !sim.st.trial.on {
			t.Fatalf("no narrowing trial at full width: %d sockets", sim.used())
		}
		sim.windows(trialSpan, 100e3, true) // half the rate: undone
		if sim.used() != 2 {
			t.Fatalf("narrowing that halved the rate kept: %d sockets", sim.used())
		}
		sim.windows(int(sim.st.backoff/simWindow)+toTrial, 200e3, true)
		if sim.used() != 1 || !sim.st.trial.on {
			t.Fatalf("no second narrowing trial: %d sockets", sim.used())
		}
		sim.windows(trialSpan, 190e3, true) // -5 %: within 1/trialGain, kept
		if sim.used() != 1 {
			t.Fatalf("narrowing that kept 95%% of the rate undone: %d sockets", sim.used())
		}
	})
	t.Run("calm narrows by one", func(t *testing.T) {
		sim := newSteerSim(t, 4)
		sim.windows(toTrial, 100e3, true)
		sim.windows(trialSpan, 300e3, true)
		if sim.used() != 2 {
			t.Fatalf("%d sockets, want 2", sim.used())
		}
		sim.windows(steerCalm-1, 50e3, false)
		if sim.used() != 2 {
			t.Fatalf("narrowed before %d calm windows", steerCalm)
		}
		sim.window(50e3, false)
		if sim.used() != 1 {
			t.Fatalf("after %d calm windows: %d sockets, want 1", steerCalm, sim.used())
		}
		sim.windows(3*steerCalm, 50e3, false)
		if sim.used() != 1 {
			t.Fatalf("narrowed below one socket: %d", sim.used())
		}
	})
}

// TestSteerWindowSpan: a window spans its own batches, from the first to
// the last, and leaves out the idle time before it; the first window of a
// burst (after a pause) is not measured at all. Either would make the rate
// before a trial look low and any change look like a gain.
func TestSteerWindowSpan(t *testing.T) {
	sim := newSteerSim(t, 2)
	at := sim.now
	burst := func() {
		for i := range steerWindow { // a window of full batches 1 ms apart
			sim.st.batch(batchSize, at.Add(time.Duration(i)*time.Millisecond))
		}
		at = at.Add(steerWindow * time.Millisecond)
	}
	burst()                       // a burst's first window: not measured
	at = at.Add(10 * time.Second) // a pause
	burst()                       // a new burst's first window: not measured either
	if sim.st.trial.on || sim.st.before != (window{}) {
		t.Fatalf("first windows of bursts measured: trial %v, before %+v", sim.st.trial.on, sim.st.before)
	}
	burst() // measured: 63 ms ≥ minBefore, so the trial starts against it
	if !sim.st.trial.on {
		t.Fatal("no trial after a measured backlogged window")
	}
	if want := float64(steerWindow*batchSize) / (63 * time.Millisecond).Seconds(); sim.st.trial.before != want {
		t.Errorf("rate before the trial %v, want %v (the window's own span)", sim.st.trial.before, want)
	}
}

// TestSteerAttachFails: a kernel that refuses the program (old, or a
// seccomp filter) leaves the server serving, unsteered, on every socket.
func TestSteerAttachFails(t *testing.T) {
	s := newTestServer(t, Options{Listen: loopbacks[:1], SocketsPerAddress: 2})
	s.attachHook = func(int) error { return errors.New("operation not permitted") }
	if err := s.Start(); err != nil {
		t.Fatalf("Start with a refused steering program: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	m := exchangeUDPA(t, s.UDPAddrs()[0].String())
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Errorf("answer: %v", m)
	}
	if v := metricValue(t, s.opts.Registry, "geodnsd_dns_udp_sockets_steered", map[string]string{"listen": s.UDPAddrs()[0].String()}); v != 2 {
		t.Errorf("geodnsd_dns_udp_sockets_steered = %v, want 2 (the kernel's hash over both)", v)
	}
}

// exchangeUDPA asks www.example.com. A over UDP.
func exchangeUDPA(t *testing.T, addr string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	r, _, err := (&dns.Client{Net: "udp", Timeout: ioBound}).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSteerUnsteered: one socket per address, and the portable loop, are
// not steered, and the metric reports every socket as used.
func TestSteerUnsteered(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sockets int
		simple  bool
	}{{"one socket", 1, false}, {"portable loop", 2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, Options{Listen: loopbacks[:1], SocketsPerAddress: tc.sockets}, tc.simple)
			for _, st := range *s.coll.steers.Load() {
				if st.apply != nil {
					t.Errorf("%v is steered", st.addr)
				}
			}
			// The metric still says how many sockets take datagrams.
			if v := metricValue(t, s.opts.Registry, "geodnsd_dns_udp_sockets_steered", map[string]string{"listen": s.UDPAddrs()[0].String()}); v != float64(tc.sockets) {
				t.Errorf("geodnsd_dns_udp_sockets_steered = %v, want %d", v, tc.sockets)
			}
		})
	}

}
