//go:build linux

package dnsserver

import (
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
		after := answered()
		return [2]uint64{after[0] - before[0], after[1] - before[1]}
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

// window ends a window of 10 ms at rate datagrams/s; backlog: every batch
// was full.
func (sim *steerSim) window(rate float64, backlog bool) {
	start := sim.now
	sim.now = sim.now.Add(10 * time.Millisecond)
	full := uint64(0)
	if backlog {
		full = steerWindow
	}
	sim.st.adjust(start, sim.now, full, uint64(rate/100))
}

// windows ends n windows of the same kind.
func (sim *steerSim) windows(n int, rate float64, backlog bool) {
	for range n {
		sim.window(rate, backlog)
	}
}

func (sim *steerSim) used() int { return int(sim.st.used.Load()) }

// TestSteerTrials: a backlog leads to a trial; the trial's outcome depends
// on the rate it gave; undone trials back off, doubling; calm narrows.
func TestSteerTrials(t *testing.T) {
	t.Run("widening that raises the rate stays", func(t *testing.T) {
		sim := newSteerSim(t, 4)
		sim.window(100e3, true)
		if sim.used() != 1 {
			t.Fatalf("after one backlogged window: %d sockets, want 1 (two in a row start a trial)", sim.used())
		}
		sim.window(100e3, true)
		if sim.used() != 2 {
			t.Fatalf("after two backlogged windows: %d sockets, want 2", sim.used())
		}
		sim.windows(trialWindows, 150e3, true)
		if sim.used() != 2 {
			t.Fatalf("after a trial at 1.5x the rate: %d sockets, want 2", sim.used())
		}
		// Still backlogged: after minBackoff the next trial doubles again.
		sim.windows(2, 150e3, true)
		if sim.used() != 2 {
			t.Fatalf("a trial started before minBackoff: %d sockets", sim.used())
		}
		sim.now = sim.now.Add(minBackoff)
		sim.windows(2, 150e3, true)
		if sim.used() != 4 {
			t.Fatalf("after minBackoff with a backlog: %d sockets, want 4", sim.used())
		}
	})
	t.Run("widening that does not raise the rate is undone and backs off", func(t *testing.T) {
		sim := newSteerSim(t, 2)
		wait := minBackoff
		for round := range 4 {
			sim.windows(2, 100e3, true)
			if sim.used() != 2 {
				t.Fatalf("round %d: no trial after two backlogged windows (%d sockets)", round, sim.used())
			}
			sim.windows(trialWindows, 105e3, true) // +5 %: not enough
			if sim.used() != 1 {
				t.Fatalf("round %d: trial at +5%% kept (%d sockets)", round, sim.used())
			}
			if sim.st.backoff != wait {
				t.Fatalf("round %d: backoff %v, want %v", round, sim.st.backoff, wait)
			}
			sim.windows(4, 100e3, true)
			if sim.used() != 1 {
				t.Fatalf("round %d: trial before the backoff of %v ended", round, wait)
			}
			sim.now = sim.now.Add(wait)
			wait = min(2*wait, maxBackoff)
		}
		for range 10 {
			sim.windows(2, 100e3, true)
			sim.windows(trialWindows, 100e3, true)
			sim.now = sim.now.Add(maxBackoff)
		}
		if sim.st.backoff != maxBackoff {
			t.Errorf("backoff %v, want the cap %v", sim.st.backoff, maxBackoff)
		}
	})
	t.Run("narrowing that keeps the rate stays", func(t *testing.T) {
		sim := newSteerSim(t, 2)
		sim.windows(2, 100e3, true)
		sim.windows(trialWindows, 200e3, true) // widening doubles the rate: kept
		if sim.used() != 2 {
			t.Fatalf("%d sockets, want 2", sim.used())
		}
		sim.now = sim.now.Add(minBackoff)
		sim.windows(2, 200e3, true) // all sockets used: the trial narrows
		if sim.used() != 1 {
			t.Fatalf("no narrowing trial at full width: %d sockets", sim.used())
		}
		sim.windows(trialWindows, 100e3, true) // half the rate: undone
		if sim.used() != 2 {
			t.Fatalf("narrowing that halved the rate kept: %d sockets", sim.used())
		}
		sim.now = sim.now.Add(sim.st.backoff)
		sim.windows(2, 200e3, true)
		if sim.used() != 1 {
			t.Fatalf("no second narrowing trial: %d sockets", sim.used())
		}
		sim.windows(trialWindows, 190e3, true) // -5 %: within 1/trialGain, kept
		if sim.used() != 1 {
			t.Fatalf("narrowing that kept 95%% of the rate undone: %d sockets", sim.used())
		}
	})
	t.Run("calm narrows by one", func(t *testing.T) {
		sim := newSteerSim(t, 4)
		sim.windows(2, 100e3, true)
		sim.windows(trialWindows, 300e3, true)
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
// the last, and leaves out the idle time before it (which would make the
// rate before a trial look low and any change look like a gain).
func TestSteerWindowSpan(t *testing.T) {
	sim := newSteerSim(t, 2)
	at := sim.now
	for w := range 2 {
		at = at.Add(10 * time.Second) // idle, then a window of full batches 1 ms apart
		for i := range steerWindow {
			sim.st.batch(batchSize, at.Add(time.Duration(i)*time.Millisecond))
		}
		at = at.Add(steerWindow * time.Millisecond)
		if w == 0 {
			want := window{steerWindow * batchSize, (steerWindow - 1) * time.Millisecond}
			if sim.st.prev != want {
				t.Fatalf("window after an idle gap: %+v, want %+v", sim.st.prev, want)
			}
		}
	}
	if sim.used() != 2 || !sim.st.trial.on {
		t.Fatalf("two backlogged windows: %d sockets, trial %v; want a trial on 2", sim.used(), sim.st.trial.on)
	}
	if want := float64(2*steerWindow*batchSize) / (2 * (steerWindow - 1) * time.Millisecond).Seconds(); sim.st.trial.before != want {
		t.Errorf("rate before the trial %v, want %v", sim.st.trial.before, want)
	}
}

// TestSteerUnsteered: one socket per address, and the portable loop, are
// not steered.
func TestSteerUnsteered(t *testing.T) {
	one := startServer(t, Options{Listen: loopbacks[:1], SocketsPerAddress: 1}, false)
	if st := one.coll.steers.Load(); st == nil || len(*st) != 0 {
		t.Errorf("one socket per address: steers %v, want none", st)
	}
	simple := startServer(t, Options{Listen: loopbacks[:1], SocketsPerAddress: 2}, true)
	if st := simple.coll.steers.Load(); st == nil || len(*st) != 0 {
		t.Errorf("portable loop: steers %v, want none", st)
	}

}
