package zones

import (
	"cmp"
	"slices"

	"github.com/miekg/dns"
)

// Transfer returns the records of the zone whose apex is origin (canonical,
// lower case) for a full zone transfer (RFC 5936 §2.2): the SOA as the zone
// answers it now, every other record of the zone file (delegations and glue
// included), names in canonical order and RRsets in type order, then the SOA
// again. It reports false when the snapshot holds no such zone. The RRs are
// shared with the snapshot: never modify them.
//
// Service names transfer with their current answers for the default route
// (A and AAAA of the active site's endpoints, or the CNAME of a host name
// endpoint), with the services' TTL: a standard secondary serves what a
// client with no geo route gets. Every routing change changes the served
// SOA serial, so secondaries (polling, or told by NOTIFY) follow it.
func (s *Snapshot) Transfer(origin string) ([]dns.RR, bool) {
	z, ok := s.zones[origin]
	if !ok {
		return nil, false
	}
	soa := dns.RR(z.soa)
	if res := s.Answer(Question{Name: origin, Type: dns.TypeSOA, Class: dns.ClassINET}); len(res.Answer) == 1 {
		soa = res.Answer[0] // the serial as served (service zones derive it)
	}
	names := make([]string, 0, len(z.nodes)+len(z.svc))
	for name, n := range z.nodes {
		if len(n.rrsets) > 0 || hasService(z, name) {
			names = append(names, name)
		}
	}
	for name := range z.svc {
		if _, ok := z.nodes[name]; !ok {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, compareCanonical)
	out := make([]dns.RR, 0, z.records+1)
	out = append(out, soa)
	for _, name := range names {
		var static *node
		if n, ok := z.nodes[name]; ok {
			static = n
			for _, set := range n.rrsets {
				if set.typ != dns.TypeSOA {
					out = append(out, set.rrs...)
				}
			}
		}
		if !hasService(z, name) {
			continue
		}
		for _, t := range []uint16{dns.TypeCNAME, dns.TypeA, dns.TypeAAAA} {
			if static != nil && static.get(t) != nil {
				continue // the zone file's own data at the name is already in
			}
			res := s.Answer(Question{Name: name, Type: t, Class: dns.ClassINET})
			for _, rr := range res.Answer {
				if h := rr.Header(); h.Rrtype == t && h.Name == name {
					out = append(out, rr)
				}
			}
		}
	}
	return append(out, soa), true
}

// hasService reports whether name is bound to a service in z.
func hasService(z *Zone, name string) bool {
	_, ok := z.svc[name]
	return ok
}

// compareCanonical orders names as RFC 4034 §6.1 does: label by label from
// the root, each label compared as lower-case bytes. The names are in the
// canonical presentation form, so labels split at unescaped dots.
func compareCanonical(a, b string) int {
	la, lb := dns.SplitDomainName(a), dns.SplitDomainName(b)
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := cmp.Compare(la[i], lb[j]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(la), len(lb))
}
