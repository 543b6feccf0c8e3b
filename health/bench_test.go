package health

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/config"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// BenchmarkScheduler10k runs one node's load: 10 000 tcp checks (and, for
// comparison, 1 000) (connect,
// read a banner line, match it) at a 1 s interval against 50 loopback
// listeners in this process, for b.N seconds. Run it for a fixed time:
//
//	go test -run '^$' -bench Scheduler10k -benchtime 10x ./health/
//
// It reports CPU seconds used per wall second (getrusage: scheduler, probes
// and the listeners together), the worst lateness of any probe against its
// slot (start of run + hash offset + k intervals), the probes more than 50 ms
// late, the slots skipped, and the failed probes.
func BenchmarkScheduler10k(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("checks=%d", n), func(b *testing.B) { benchScheduler(b, n) })
	}
}

func benchScheduler(b *testing.B, n int) {
	const interval, listeners = time.Second, 50
	var addrs []*net.TCPAddr
	for range listeners {
		l := listen(b)
		serve(l, func(c net.Conn) { c.Write([]byte("* OK ready\r\n")) })
		addrs = append(addrs, l.Addr().(*net.TCPAddr))
	}
	probe, err := NewProbe(&config.Check{Type: config.CheckTCP, Expect: config.Regexp{Regexp: regexp.MustCompile(`^\* OK`)}}, false)
	if err != nil {
		b.Fatal(err)
	}
	starts := make([][]time.Time, n)
	slowest := make([]time.Duration, n)
	fails := make([]int, n)
	checks := make([]Check, n)
	for i := range n {
		a := addrs[i%listeners]
		checks[i] = Check{
			Key:      Key{Site: fmt.Sprintf("site%d", i/100), Endpoint: fmt.Sprintf("ep%d", i%100), Check: "imap"},
			Type:     config.CheckTCP,
			Target:   Target{Host: a.IP.String(), Port: a.Port},
			Interval: interval, Timeout: interval * 8 / 10, Rise: 2, Fall: 3,
			Spec: "imap",
			Probe: func(ctx context.Context, t Target) Result {
				starts[i] = append(starts[i], time.Now()) // one loop per check: no race
				r := probe(ctx, t)
				if r.Err != nil && ctx.Err() == nil { // not the cancellation at the end
					fails[i]++
				}
				if d := time.Since(starts[i][len(starts[i])-1]); d > slowest[i] {
					slowest[i] = d
				}
				return r
			},
		}
	}
	s, err := New(Options{MaxConcurrent: 1024})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Update(checks); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	t0 := time.Now()
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	time.Sleep(time.Duration(b.N) * interval) // the load runs for b.N intervals
	cancel()
	<-done
	wall := time.Since(t0)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())

	var maxLate time.Duration
	var probes, late, failed int
	var maxProbe time.Duration
	for i, ss := range starts {
		maxProbe = max(maxProbe, slowest[i])
		off := offset(checks[i].Key, interval)
		for k, st := range ss {
			// Slot k of the check; a skipped slot shows as a probe late by a whole interval or more.
			slot := t0.Add(off + time.Duration(k)*interval)
			if d := st.Sub(slot); d > maxLate {
				maxLate = d
			}
			if st.Sub(slot) > 50*time.Millisecond {
				late++
			}
		}
		probes += len(ss)
		failed += fails[i]
	}
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-s/s")
	b.ReportMetric(float64(probes)/wall.Seconds(), "probes/s")
	b.ReportMetric(float64(maxLate.Microseconds())/1000, "max-late-ms")
	b.ReportMetric(float64(late), "late>50ms")
	b.ReportMetric(float64(maxProbe.Microseconds())/1000, "max-probe-ms")
	b.ReportMetric(testutil.ToFloat64(s.m.skipped), "skipped")
	b.ReportMetric(float64(failed), "failed")
}
