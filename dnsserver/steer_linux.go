//go:build linux

package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Steering: the UDP sockets of one address form a SO_REUSEPORT group, and
// a classic BPF program attached to the group (SO_ATTACH_REUSEPORT_CBPF,
// socket(7)) picks the socket of each datagram. The server steers every
// datagram to the group's first socket while one reader keeps up, and
// spreads them over more sockets only when it does not.
//
// Why: with the kernel's hash, k sockets each get 1/k of the queries, so
// each reader's batches are k times smaller and each reader empties its
// socket, parks on the runtime poller and is woken again k times as often.
// On a machine where the server does not have the cores to itself, that
// costs more than the parallelism gives: under dnsperf -T 2 -c 8 on two
// shared cores, one socket used 1.34 times less CPU per query than two
// (median of 12 paired rounds, bench/dnsperf.sh), as did (1.2 times)
// leaving two sockets but one P. Steering gives one socket's batching at
// low and moderate load and every socket's parallelism under a load one
// reader cannot carry.
//
// When to spread: a reader that takes a full batch (batchSize datagrams)
// has a backlog. But a backlog alone does not say that more sockets would
// help: where the cores are busy anyway (a load generator on the same
// machine, other work), a second reader only splits the batches, and the
// server answers fewer queries for more CPU. So every change under a
// backlog is a trial.
//
// A window is steerWindow batches taken by the group's readers (a few
// milliseconds under load); it has a backlog when at least a quarter of its
// batches are full. The first window of a backlog (after a window without
// one, or a pause longer than minBefore) is left out (a burst's ramp, not
// a rate); the rate before a trial is measured over the
// following backlogged windows until they span minBefore. Then the sockets
// used double (up to all of them: always from one socket, from more unless
// the last widening was undone) or else halve, and the rate is measured
// again for at least trialWindows windows and minTrial. A widening stays
// if the rate rose by trialGain, a narrowing if it kept at least
// 1/trialGain of it (fewer sockets, less CPU). Otherwise the change is
// undone. The next trial waits minBackoff after a kept change and twice as
// long as before (up to maxBackoff) after an undone one, with a fresh
// measure of the rate before it; a backlog that comes after resetAfter
// without one starts again with no wait. After steerCalm windows in a row
// without a full batch, the sockets used drop by one. A datagram already
// queued on a socket that stops being chosen is still read: every socket
// keeps its reader.
const (
	steerWindow  = 64
	steerCalm    = 16
	minBefore    = 50 * time.Millisecond
	trialWindows = 8
	minTrial     = 200 * time.Millisecond
	trialGain    = 1.15
	minBackoff   = time.Second
	maxBackoff   = 64 * time.Second
	resetAfter   = 10 * time.Second
)

// steer is the steering state of one address's socket group. A group that
// is not steered (one socket, the portable loop, a refused program) has one
// too, for the metric only: apply is nil and used is the socket count.
type steer struct {
	addr  netip.AddrPort
	n     int // sockets in the group
	rc    interface{ Control(func(uintptr)) error }
	log   func(msg string, args ...any)
	used  atomic.Int32  // sockets datagrams are spread over (1..n)
	count atomic.Uint64 // batches so far (windows end at multiples of steerWindow)
	full  atomic.Uint64 // full batches in the current window
	msgs  atomic.Uint64 // datagrams in the current window
	// first holds the time (Unix ns) of a window's first batch, by the
	// window number's parity, so that a window's span leaves out any idle
	// time before it, and the next window's first batch cannot overwrite
	// it before the window is ended.
	first [2]atomic.Int64

	apply func(k int) error // attaches program(k); a test replaces it

	mu          sync.Mutex // guards the rest and the program changes
	before      window     // the backlogged windows measured for the next trial
	run         int        // backlogged windows in a row
	calm        int        // windows in a row without a full batch
	lastBacklog time.Time  // end of the last backlogged window
	trial       trial
	widenFailed bool          // the last widening was undone
	retryAt     time.Time     // no trial before this
	backoff     time.Duration // wait after the next undone trial
}

// window is a count of datagrams over a time.
type window struct {
	msgs    uint64
	elapsed time.Duration
}

func (w window) rate() float64 { return float64(w.msgs) / w.elapsed.Seconds() }

// trial is a change of the sockets used, under test.
type trial struct {
	on     bool
	from   int     // sockets used before
	before float64 // datagrams per second before
	window         // since the change
	count  int     // windows since the change
}

// newSteer attaches the program that sends every datagram to the first of
// the group's sockets (conns, in bind order: a group's sockets are indexed
// in the order they joined it). nil, nil when there is nothing to steer;
// an error when the program cannot be attached (a kernel without
// SO_ATTACH_REUSEPORT_CBPF, a seccomp filter): the server then serves
// unsteered.
func newSteer(s *Server, conns []*net.UDPConn) (*steer, error) {
	if len(conns) < 2 || s.simpleUDP {
		return nil, nil
	}
	rc, err := conns[0].SyscallConn()
	if err != nil {
		return nil, err
	}
	st := &steer{addr: conns[0].LocalAddr().(*net.UDPAddr).AddrPort(), n: len(conns), rc: rc, log: s.log.Debug}
	st.apply = st.attach
	if s.attachHook != nil {
		st.apply = s.attachHook
	}
	if err := st.set(1); err != nil {
		return nil, fmt.Errorf("dns server: udp %v: steering: %w", st.addr, err)
	}
	return st, nil
}

// program returns the classic BPF program that spreads datagrams over the
// first k sockets of the group: the socket is the DNS message ID (the
// first two bytes of the UDP payload, where the program's data starts)
// modulo k, so that queries spread evenly whatever their source. With k=1
// every datagram goes to socket 0. A datagram too short to load from ends
// the program with 0: socket 0.
func program(k int) []unix.SockFilter {
	if k <= 1 {
		return []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	}
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(k)},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
}

// set attaches program(k) to the group and records k.
func (st *steer) set(k int) error {
	if err := st.apply(k); err != nil {
		return err
	}
	st.used.Store(int32(k))
	return nil
}

// attach sets the group's program (SO_ATTACH_REUSEPORT_CBPF on any socket
// of the group replaces the group's program).
func (st *steer) attach(k int) error {
	prog := program(k)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	var serr error
	err := st.rc.Control(func(fd uintptr) {
		_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, uintptr(unsafe.Pointer(&fprog)), unsafe.Sizeof(fprog), 0)
		if e != 0 {
			serr = e
		}
	})
	if err == nil {
		err = serr
	}
	return err
}

// batch records one batch of n datagrams taken at now by a reader of the
// group, and adjusts the steering at the end of a window.
func (st *steer) batch(n int, now time.Time) {
	if n >= batchSize {
		st.full.Add(1)
	}
	st.msgs.Add(uint64(n))
	c := st.count.Add(1)
	slot := &st.first[(c-1)/steerWindow%2]
	if c%steerWindow == 1 {
		slot.Store(now.UnixNano())
	}
	if c%steerWindow != 0 {
		return
	}
	st.adjust(time.Unix(0, slot.Load()), now, st.full.Swap(0), st.msgs.Swap(0))
}

// adjust ends a window of msgs datagrams whose batches were taken from
// start to now, full of them full.
func (st *steer) adjust(start, now time.Time, full, msgs uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	elapsed := now.Sub(start)
	if elapsed <= 0 {
		return
	}
	w := window{msgs, elapsed}
	k := int(st.used.Load())
	if t := &st.trial; t.on {
		t.msgs += w.msgs
		t.elapsed += w.elapsed
		if t.count++; t.count < trialWindows || t.elapsed < minTrial {
			return
		}
		t.on = false
		after, widen := t.rate(), k > t.from
		kept := after >= t.before*trialGain || (!widen && after*trialGain >= t.before)
		args := []any{"rate_before", int(t.before), "rate_after", int(after)}
		if kept {
			st.backoff, st.retryAt = minBackoff, now.Add(minBackoff)
			st.widenFailed = false
			st.log("dns server: steering", append([]any{"addr", st.addr.String(), "sockets", k, "of", st.n, "why", "trial kept"}, args...)...)
			return
		}
		st.backoff = min(max(2*st.backoff, minBackoff), maxBackoff)
		st.retryAt = now.Add(st.backoff)
		st.widenFailed = widen
		st.change(t.from, "trial undone", append(args, "next_trial_in", st.backoff.String())...)
		return
	}
	if full*4 < steerWindow { // no backlog
		st.run, st.before = 0, window{}
		if full == 0 && k > 1 {
			if st.calm++; st.calm >= steerCalm {
				st.change(k-1, "no backlog")
				st.calm = 0
			}
		} else {
			st.calm = 0
		}
		return
	}
	if !st.lastBacklog.IsZero() && now.Sub(st.lastBacklog) > resetAfter {
		st.backoff, st.retryAt, st.widenFailed = 0, time.Time{}, false
	}
	if start.Sub(st.lastBacklog) > minBefore { // a pause: a new burst
		st.run, st.before = 0, window{}
	}
	st.lastBacklog, st.calm = now, 0
	if st.run++; st.run == 1 {
		return // a burst's ramp: not a measure of the rate
	}
	st.before.msgs += w.msgs
	st.before.elapsed += w.elapsed
	if st.before.elapsed < minBefore {
		return
	}
	if now.Before(st.retryAt) {
		st.before = window{} // measure afresh when the wait is over
		return
	}
	before := st.before.rate()
	st.before = window{}
	next := k
	switch {
	case k < st.n && (k == 1 || !st.widenFailed):
		next = min(2*k, st.n)
	case k > 1:
		next = k / 2
	}
	if next != k && st.change(next, "trial: backlog") {
		st.trial = trial{on: true, from: k, before: before}
	}
}

// change steers to k sockets and logs why; false if the program could not
// be changed (the steering stays as it was).
func (st *steer) change(k int, why string, args ...any) bool {
	if err := st.set(k); err != nil {
		st.log("dns server: steering unchanged", "addr", st.addr.String(), "err", err)
		return false
	}
	st.log("dns server: steering", append([]any{"addr", st.addr.String(), "sockets", k, "of", st.n, "why", why}, args...)...)
	return true
}
