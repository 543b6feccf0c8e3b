package web

import (
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// The few places that read failover fields whose shape changed with
// seams.md §1 and §2 (Endpoint{Name, Address}, NodeStatus.Digest/Clock) are
// kept here.

// siteEndpoints returns a site's endpoints as (name, address) pairs in spec
// order.
func siteEndpoints(sp failover.SiteSpec) (names, addrs []string) {
	for _, e := range sp.Endpoints {
		names = append(names, e.Name)
		addrs = append(addrs, e.Address)
	}
	return names, addrs
}

// answerAddrs returns the addresses an answer gives, in answer order.
func answerAddrs(a failover.Answer) []string {
	out := make([]string, 0, len(a.Endpoints))
	for _, e := range a.Endpoints {
		out = append(out, e.Address)
	}
	return out
}

// nodeDigest returns a node's reported config digest and clock.
func nodeDigest(n failover.NodeStatus) (digest string, clock time.Time) {
	return n.Digest, n.Clock
}
