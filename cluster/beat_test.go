package cluster

import (
	"sync"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// Beats carry the node's clock, config digest and verdicts digest; when
// the cluster's record of the node's verdicts differs from what the node
// says now (a verdict lost or forgotten), the node resends them all within
// a beat.
func TestBeatsAndVerdictResend(t *testing.T) {
	var mu sync.Mutex
	verdicts := []failover.Observation{{Site: "dallas", Endpoint: "d1", Check: "http", Up: false, Reason: "timeout"}, {Site: "losangeles", Endpoint: "l1", Check: "http", Up: true}}
	o := oneNodeOptions(t.TempDir())
	o.Digest = func() string { return "sha256:abc" }
	o.Verdicts = func() ([]failover.Observation, []failover.SyncVerdict) {
		mu.Lock()
		defer mu.Unlock()
		return append([]failover.Observation(nil), verdicts...), nil
	}
	c := startOne(t, o)
	// Nothing was ever observed: the beat loop finds the mismatch and
	// sends the set; the state then holds it and fails over.
	waitUntil(t, 10*time.Second, []*Cluster{c}, "the verdict set applied and acted on", func() bool {
		v := c.View()
		return active(v) == "losangeles" && v.State.NodeVerdictsDigest("solo") == failover.VerdictsDigest(verdicts, nil)
	})
	waitUntil(t, 10*time.Second, []*Cluster{c}, "a beat with digests", func() bool {
		for _, n := range c.View().State.Status().Nodes {
			if n.Name == "solo" && n.Digest == "sha256:abc" && n.Verdicts == failover.VerdictsDigest(verdicts, nil) && !n.Clock.IsZero() {
				return true
			}
		}
		return false
	})
	// The node's verdict flips without an observation reaching the cluster
	// (lost): the resend brings it.
	mu.Lock()
	verdicts = []failover.Observation{{Site: "dallas", Endpoint: "d1", Check: "http", Up: true}, {Site: "losangeles", Endpoint: "l1", Check: "http", Up: true}}
	want := failover.VerdictsDigest(verdicts, nil)
	mu.Unlock()
	waitUntil(t, 10*time.Second, []*Cluster{c}, "the flipped verdict resent", func() bool {
		return c.View().State.NodeVerdictsDigest("solo") == want
	})
}
