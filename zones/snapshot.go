package zones

import (
	"sort"
	"sync/atomic"

	"github.com/miekg/dns"
)

// snapshotVersion is the process-wide source of [Snapshot.Version].
var snapshotVersion atomic.Uint64

// Snapshot is an immutable set of zones, safe for concurrent readers.
type Snapshot struct {
	version uint64
	zones   map[string]*Zone
	sorted  []*Zone

	// Services (nil without): see newSnapshot.
	svcs     *Services
	routing  *Routing
	ends     [][]ends         // [service][route]
	deps     map[string][]int // lower-case wire name -> services it depends on
	wildDeps []int            // services some wildcard's answer depends on
}

// NewSnapshot returns a snapshot of zs. When two zones have the same origin
// the later one wins: refusing such a set is the caller's job. Nil zones are
// skipped.
func NewSnapshot(zs ...*Zone) *Snapshot {
	s := &Snapshot{
		version: snapshotVersion.Add(1),
		zones:   make(map[string]*Zone, len(zs)),
	}
	for _, z := range zs {
		if z != nil {
			s.zones[z.origin] = z
		}
	}
	s.sorted = make([]*Zone, 0, len(s.zones))
	for _, z := range s.zones {
		s.sorted = append(s.sorted, z)
	}
	sort.Slice(s.sorted, func(i, j int) bool { return s.sorted[i].origin < s.sorted[j].origin })
	return s
}

// Version returns a process-unique number, strictly increasing with each
// call of [NewSnapshot]. The server uses it as a cache key.
func (s *Snapshot) Version() uint64 { return s.version }

// Zones returns the zones sorted by origin. The slice is shared: do not
// modify it.
func (s *Snapshot) Zones() []*Zone { return s.sorted }

// Result is the answer to one question: the rcode, the AA bit and the three
// sections. Its RRs are shared with the snapshot (except rewritten owners):
// never modify them.
type Result struct {
	Rcode         int  // dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeRefused ...
	Authoritative bool // AA
	Answer, Ns    []dns.RR
	Extra         []dns.RR
	Zone          string // origin of the zone that answered, "" when refused
}
