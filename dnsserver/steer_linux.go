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
// backlog is a trial. A window is steerWindow batches of the group's
// readers; it has a backlog when at least a quarter of its batches are
// full. After two windows in a row with a backlog, the sockets used double
// (up to all of them: always from one socket, from more unless the last
// widening was undone) or else halve; trialWindows windows later the datagram rate is compared with
// the rate of the two windows before. A widening stays if the rate rose
// by trialGain, a narrowing if it kept at least 1/trialGain of it (fewer
// sockets, less CPU). Otherwise the change is undone. The next trial waits
// minBackoff after a kept change and twice as long as before (up to
// maxBackoff) after an undone one. After steerCalm windows in a row
// without a full batch, the sockets used drop by one. A datagram already
// queued on a socket that stops being chosen is still read: every socket
// keeps its reader.
const (
	steerWindow  = 64
	steerCalm    = 16
	trialWindows = 8
	trialGain    = 1.15
	minBackoff   = time.Second
	maxBackoff   = 64 * time.Second
)

// steer is the steering state of one address's socket group.
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
	prev        window     // the window before, if it had a backlog
	calm        int        // windows in a row without a full batch
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
// in the order they joined it). nil, nil when there is nothing to steer.
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
		if t.count++; t.count < trialWindows {
			return
		}
		t.on = false
		st.prev = window{}
		after, widen := t.rate(), k > t.from
		kept := after >= t.before*trialGain || (!widen && after*trialGain >= t.before)
		args := []any{"rate_before", int(t.before), "rate_after", int(after)}
		if kept {
			st.backoff, st.retryAt = minBackoff, now.Add(minBackoff)
			st.widenFailed = false
			st.log("dns server: steering kept", append([]any{"addr", st.addr.String(), "sockets", k, "of", st.n}, args...)...)
			return
		}
		st.backoff = min(max(2*st.backoff, minBackoff), maxBackoff)
		st.retryAt = now.Add(st.backoff)
		st.widenFailed = widen
		st.change(t.from, "trial undone", append(args, "next_trial_in", st.backoff.String())...)
		return
	}
	backlog := full*4 >= steerWindow
	switch {
	case backlog && st.prev.msgs > 0 && !now.Before(st.retryAt):
		before := window{st.prev.msgs + w.msgs, st.prev.elapsed + w.elapsed}.rate()
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
		st.prev, st.calm = window{}, 0
	case backlog:
		st.prev, st.calm = w, 0
	case full == 0 && k > 1:
		st.prev = window{}
		if st.calm++; st.calm >= steerCalm {
			st.change(k-1, "no backlog")
			st.calm = 0
		}
	default:
		st.prev, st.calm = window{}, 0
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
