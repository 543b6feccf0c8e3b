package failover

import (
	"fmt"
	"testing"
	"time"
)

// benchState is 100 services x 5 sites x 6 nodes, every site up and in sync,
// every node fresh.
func benchState(b *testing.B) *State {
	b.Helper()
	sp := Spec{VoteTTL: time.Hour, Nodes: nodes6}
	for i := range 5 {
		sp.Sites = append(sp.Sites, SiteSpec{Name: fmt.Sprintf("site%d", i),
			Endpoints: eps(fmt.Sprintf("10.0.%d.1", i), fmt.Sprintf("10.0.%d.2", i)), SyncCheck: "replication"})
	}
	for i := range 100 {
		var order []string
		for j := range 5 {
			order = append(order, fmt.Sprintf("site%d", (i+j)%5))
		}
		sp.Services = append(sp.Services, ServiceSpec{Name: fmt.Sprintf("svc%03d", i), Names: []string{fmt.Sprintf("svc%03d.example.com.", i)},
			Routes: []RouteSpec{{Name: "default", Sites: order}, {Name: "eu", Sites: []string{order[1], order[0]}}},
			Policy: Policy{Failover: Auto, Failback: Auto, DownFor: 30 * time.Second, StableFor: time.Minute, MinInterval: time.Minute}})
	}
	s, err := New(sp, t0)
	if err != nil {
		b.Fatal(err)
	}
	for _, site := range sp.Sites {
		for _, n := range sp.Nodes {
			for _, ep := range site.Endpoints {
				for _, c := range []string{"https", "tcp"} {
					if _, err := Apply(s, Observation{Time: t0, Node: n, Site: site.Name, Endpoint: ep.Name, Check: c, Up: true}); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := Apply(s, SyncVerdict{Time: t0, Node: n, Site: site.Name, Check: "replication", InSync: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return s
}

// BenchmarkApplyObservation: one node's verdict on one check, alternating
// up and down (a minority: nothing moves), so every call changes a vote.
func BenchmarkApplyObservation(b *testing.B) {
	s := benchState(b)
	events := []Event{
		Observation{Time: t0.Add(time.Second), Node: "ns3", Site: "site2", Endpoint: "10.0.2.1", Check: "https", Up: false, Reason: "timeout"},
		Observation{Time: t0.Add(time.Second), Node: "ns3", Site: "site2", Endpoint: "10.0.2.1", Check: "https", Up: true, Reason: "200"},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := Apply(s, events[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideSteady: nothing to do, the common case on every tick.
func BenchmarkDecideSteady(b *testing.B) {
	s := benchState(b)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(s, now); len(d) != 0 {
			b.Fatalf("decisions: %d", len(d))
		}
	}
}

// BenchmarkDecideSiteDown: site0 is down: the 40 services with it first on a
// route all fail over (one decision each).
func BenchmarkDecideSiteDown(b *testing.B) {
	s := benchState(b)
	for _, n := range nodes6 {
		for _, ep := range []string{"10.0.0.1", "10.0.0.2"} {
			if _, err := Apply(s, Observation{Time: t0.Add(time.Second), Node: n, Site: "site0", Endpoint: ep, Check: "https", Reason: "refused"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	now := t0.Add(time.Minute)
	if _, err := Apply(s, Tick{Time: now}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := Decide(s, now); len(d) != 40 {
			b.Fatalf("decisions: %d", len(d))
		}
	}
}
