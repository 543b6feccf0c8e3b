package zones

import (
	"strings"

	"github.com/miekg/dns"
)

// Zone is one loaded zone. It is immutable after [Parse] and safe for
// concurrent readers.
type Zone struct {
	origin   string
	file     string
	soa      *dns.SOA
	negSOA   []dns.RR // the SOA with TTL min(SOA TTL, MINIMUM), RFC 2308 §3
	apex     *node
	nodes    map[string]*node // canonical lower-case name -> node; includes ENTs
	records  int
	warnings []string

	// Set only on the copies a snapshot makes of zones that hold service
	// names (see Snapshot): the services bound to names of this zone.
	svc  map[string]int // canonical name -> service index
	snap *Snapshot
}

// node is one existing name of a zone: a name with records or an empty
// non-terminal. Its data never changes after Parse.
//
// Seam for dynamic names: a later step can mark a node as served from the
// replicated failover state and have answer ask that state for the RRsets
// instead of reading rrsets; everything around it (delegations, wildcards,
// CNAME chains, negative answers) stays as it is.
type node struct {
	name   string
	rrsets []rrset // sorted by type
	cut    *node   // the delegation point at or above this name (not the apex), nil when authoritative
	wild   *node   // the wildcard child "*.name", if it exists
	dname  *node   // the highest DNAME owner strictly above this name, nil when none
}

// rrset is the records of one type at one name, in zone file order, all
// with the same TTL.
type rrset struct {
	typ  uint16
	rrs  []dns.RR
	line int // line of the first record in the zone file, for messages
}

func (n *node) get(t uint16) []dns.RR {
	for i := range n.rrsets {
		if n.rrsets[i].typ == t {
			return n.rrsets[i].rrs
		}
	}
	return nil
}

// line returns the zone file line of the first record of type t, 0 if none.
func (n *node) line(t uint16) int {
	for i := range n.rrsets {
		if n.rrsets[i].typ == t {
			return n.rrsets[i].line
		}
	}
	return 0
}

// OriginFromFileName returns the origin implied by a zone file name:
// "example.com.zone", "example.com" and "example.com." all give
// "example.com.". Directories are stripped.
func OriginFromFileName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSuffix(name, ".zone")
	return strings.ToLower(dns.Fqdn(name))
}

// Origin returns the zone's apex as a canonical lower-case FQDN.
func (z *Zone) Origin() string { return z.origin }

// SOA returns the zone's SOA record. It is shared: do not modify it.
func (z *Zone) SOA() *dns.SOA { return z.soa }

// File returns the file name the zone was parsed from, as given to [Parse].
func (z *Zone) File() string { return z.file }

// Records returns the number of records in the zone after merging duplicates.
func (z *Zone) Records() int { return z.records }

// Warnings returns the problems that [Parse] normalised rather than refused,
// each "file:line: message".
func (z *Zone) Warnings() []string { return z.warnings }
