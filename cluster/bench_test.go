package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// benchSpec: sites × endpoints, services over pairs of sites, six voters.
func benchSpec(sites, endpoints int) failover.Spec {
	sp := failover.Spec{Nodes: ids(6), VoteTTL: time.Hour, TrustHealthWithoutSync: true}
	for s := range sites {
		ss := failover.SiteSpec{Name: fmt.Sprintf("site%03d", s)}
		for e := range endpoints {
			ss.Endpoints = append(ss.Endpoints, failover.Endpoint{Name: fmt.Sprintf("e%02d", e), Address: fmt.Sprintf("10.%d.%d.1", s, e)})
		}
		sp.Sites = append(sp.Sites, ss)
	}
	for s := 0; s+1 < sites; s += 2 {
		sp.Services = append(sp.Services, failover.ServiceSpec{
			Name:   fmt.Sprintf("svc%03d", s),
			Names:  []string{fmt.Sprintf("svc%03d.example.com.", s)},
			Routes: []failover.RouteSpec{{Name: "default", Sites: []string{sp.Sites[s].Name, sp.Sites[s+1].Name}}},
		})
	}
	return sp
}

// BenchmarkLeaderThroughput: one or six nodes over mutual TLS on loopback
// (all in this process, on this machine's cores and disk), each flapping
// its verdicts on 10 000 checks (100 sites × 10 endpoints × 10 checks) in
// batches of `batch` observations per Observe call, all at once (followers
// forward to the leader). One b.N step is one batch from every node.
// Reports log entries/s and observations/s committed by the leader.
func BenchmarkLeaderThroughput(b *testing.B) {
	for _, nodes := range []int{1, 6} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("nodes=%d/batch=%d", nodes, batch), func(b *testing.B) {
				benchThroughput(b, nodes, batch)
			})
		}
	}
}

func benchThroughput(b *testing.B, nodes, batch int) {
	const sites, endpoints, checks = 100, 10, 10
	tc := startCluster(b, nodes, func(i int, o *Options) {
		o.Spec = benchSpec(sites, endpoints)
		o.HeartbeatTimeout, o.ElectionTimeout, o.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
		o.BeatInterval = time.Second
		o.WriteTimeout = 30 * time.Second
		if os.Getenv("BENCH_LOG") != "" {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		}
	})
	l := leader(b, tc.nodes)
	ctx := context.Background()
	start := l.View().Index
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	for n, c := range tc.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := 0
			for i := range b.N {
				evs := make([]failover.Event, batch)
				for j := range evs {
					x := (k*7919 + n*104729) % (sites * endpoints * checks)
					k++
					evs[j] = failover.Observation{Node: c.ID(), Site: fmt.Sprintf("site%03d", x/(endpoints*checks)),
						Endpoint: fmt.Sprintf("e%02d", x/checks%endpoints), Check: fmt.Sprintf("c%d", x%checks), Up: (i+j)%2 == 0, Reason: "flap"}
				}
				if err := c.Observe(ctx, evs); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	b.StopTimer()
	entries := l.View().Index - start
	b.ReportMetric(float64(entries)/el.Seconds(), "entries/s")
	b.ReportMetric(float64(nodes*b.N*batch)/el.Seconds(), "observations/s")
}

// BenchmarkCommandAppliedEverywhere: six nodes over mutual TLS on
// loopback; one op is a command submitted on a follower (forwarded) and
// WaitAll until all six have applied it (DESIGN.md §4: 0.3 s on a LAN).
func BenchmarkCommandAppliedEverywhere(b *testing.B) {
	tc := startCluster(b, 6, func(i int, o *Options) {
		o.HeartbeatTimeout, o.ElectionTimeout, o.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
		o.TickInterval, o.BeatInterval = time.Second, time.Second
		o.WriteTimeout = 10 * time.Second
	})
	l := leader(b, tc.nodes)
	f := others(tc.nodes, l)[0]
	ctx := context.Background()
	ops := []failover.Op{failover.OpFreeze, failover.OpThaw}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res, err := f.Submit(ctx, failover.Command{Op: ops[i%2], Actor: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		if all, err := f.WaitAll(ctx, res.Index); err != nil || len(all) != 6 {
			b.Fatalf("WaitAll: %v %v", all, err)
		}
	}
}
