package zones

import (
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Lookup answers one question against the snapshot. It is pure and safe
// for concurrent use; the returned RRs are shared with the snapshot (copies
// where the owner is rewritten) and must not be modified.
//
// The rules, as NSD and Knot answer:
//
//   - qclass IN is answered; qclass ANY is answered like IN but with AA off
//     and no SOA in negative answers (as NSD does); any other class is
//     REFUSED with AA off (CHAOS is the server's business).
//   - The closest enclosing zone answers; no zone gives REFUSED, AA off,
//     empty sections. A DS question for the apex of a zone whose parent is
//     also loaded is answered by the parent (RFC 4035 §3.1.4.1); without the
//     parent it is NODATA from the zone itself.
//   - At or below a delegation (an NS RRset below the apex) the answer is a
//     referral: NOERROR, AA off, the NS RRset in authority and the glue in
//     additional; DS at the delegation point is answered by the parent side
//     with AA on. A CNAME chain that runs into a delegation keeps AA (NSD).
//   - NXDOMAIN and NODATA carry the zone's SOA in authority with TTL
//     min(SOA TTL, MINIMUM) (RFC 2308); empty non-terminals are NODATA.
//   - CNAMEs are followed within the zone, at most maxChain links, stopping
//     at a loop; the last link decides the rcode (RFC 6604). A target
//     outside the zone ends the answer with NOERROR. Only the first record
//     of a CNAME RRset counts (there is only one: more is a load error).
//   - DNAME follows RFC 6672 as NSD and Knot serve it: a name strictly
//     below a DNAME owner (the highest, if several) gets the DNAME and a
//     CNAME synthesised from the name as asked to the substituted name, with
//     the DNAME's TTL; the substituted name is then followed like a CNAME
//     target. Data below a DNAME is refused at load, as NSD does. The owner
//     itself answers as any name. A substituted name over 255 bytes is
//     YXDOMAIN with the DNAME alone (RFC 6672 §2.2).
//   - Wildcards follow RFC 4592: "*.<closest encloser>" is used only when
//     the name does not exist; existing names and empty non-terminals block
//     it. The synthesized owner is the name asked.
//   - ANY gets one RRset (RFC 8482 §4.1), chosen like NSD: A, AAAA, SOA, MX,
//     PTR first, then any other type, then DNSKEY, RRSIG, NSEC; the lowest
//     type number within a tier. A CNAME name therefore answers its CNAME.
//   - Positive answers carry no authority section (minimal responses). The
//     additional section holds the A then the AAAA RRsets of in-zone targets
//     of the MX, SRV and NS records answered (all A RRsets first, as NSD
//     orders them); glue (data at or below a delegation) only for NS.
//     Targets that do not exist but match a wildcard get synthesized
//     addresses, as NSD does.
//   - RRs owned by the question name carry qname exactly as passed, so the
//     server's name compression points them at the question. Other owners
//     are the zone's canonical lower-case names.
//
// do (the DNSSEC OK bit) is accepted for a later DNSSEC step and ignored.
//
// Lookup answers every service name with its default route; [Snapshot.Answer]
// takes the client's routes.
func (s *Snapshot) Lookup(qname string, qtype, qclass uint16, do bool) Result {
	return s.Answer(Question{Name: qname, Type: qtype, Class: qclass, DO: do})
}

// Question is one question and what the answer may depend on besides it.
type Question struct {
	Name        string // as asked (case kept); a missing final dot is added
	Type, Class uint16
	DO          bool // DNSSEC OK: accepted for a later DNSSEC step, ignored
	// Routes holds the client's route per service: Routes[i] is an index
	// into the routes of service i of the snapshot's [Services] (as
	// [Snapshot.Route] returns them). Missing entries mean route 0, the
	// default. Only the services [Snapshot.Dynamic] names for the question
	// are read.
	Routes []uint8
}

// Answer answers q as [Snapshot.Lookup] describes, and service names as
// follows (DESIGN §3.2, §3.4):
//
//   - A and AAAA come from the endpoints of the client's route (the
//     routing view: the active site's endpoints the cluster does not see
//     down, in endpoint order; all of them while the route fails open),
//     with the service's TTL and AA. A family with no endpoint is NODATA
//     with the SOA. When the first endpoint is a host name the name is a
//     CNAME to it (A, AAAA, CNAME and ANY questions), followed in the zone
//     as any CNAME.
//   - Other types come from the zone file's records at the name, or are
//     NODATA; the name exists even when the file does not define it.
//   - ANY answers the A RRset, else the AAAA RRset, else the CNAME, else as
//     for a static name (RFC 8482).
//   - MX, SRV and NS targets that are service names get the current A and
//     AAAA records of the client's route in the additional section.
//   - A service route missing from the routing view (no view yet) is
//     SERVFAIL, so that resolvers ask another server rather than cache an
//     empty answer.
//   - The SOA serial of a zone holding service names is the file's serial
//     plus the routing version (see [Routing]).
func (s *Snapshot) Answer(q Question) Result {
	if q.Class != dns.ClassINET && q.Class != dns.ClassANY {
		return Result{Rcode: dns.RcodeRefused}
	}
	qname := q.Name
	if !dns.IsFqdn(qname) {
		qname += "."
	}
	lname := lookupName(qname)
	z := s.zoneFor(lname, q.Type)
	if z == nil {
		return Result{Rcode: dns.RcodeRefused}
	}
	res := Result{Zone: z.origin}
	z.answer(&res, &q, qname, lname, q.Type, q.Class == dns.ClassANY)
	return res
}

// zoneFor returns the closest enclosing zone of name, or for DS at a zone
// apex the closest zone above it when there is one.
func (s *Snapshot) zoneFor(name string, qtype uint16) *Zone {
	var found *Zone
	for n := name; ; {
		if z, ok := s.zones[n]; ok {
			if found != nil || qtype != dns.TypeDS || n != name {
				return z
			}
			found = z
		}
		if n == "." {
			return found
		}
		i, end := dns.NextLabel(n, 0)
		if end {
			n = "."
		} else {
			n = n[i:]
		}
	}
}

// closest returns the node of name if it exists (exact), else the node of
// its closest encloser. name must be at or below the apex.
func (z *Zone) closest(name string) (*node, bool) {
	if n, ok := z.nodes[name]; ok {
		return n, true
	}
	for s := name; ; {
		i, end := dns.NextLabel(s, 0)
		if end {
			return z.apex, false
		}
		s = s[i:]
		if n, ok := z.nodes[s]; ok {
			return n, false
		}
	}
}

// answer fills res for a question that z is responsible for. qname is the
// name as asked, lname its canonical form.
func (z *Zone) answer(res *Result, q *Question, qname, lname string, qtype uint16, anyClass bool) {
	res.Authoritative = !anyClass
	name, owner := lname, qname
	var chain [maxChain]string
	links := 0
	for {
		n, exact := z.closest(name)
		if dn := n.dname; dn != nil || (!exact && n.get(dns.TypeDNAME) != nil) {
			if dn == nil {
				dn = n
			}
			target, ok := z.redirect(res, dn, name, owner)
			if !ok || qtype == dns.TypeCNAME {
				return // the synthesised CNAME answers a CNAME question (NSD)
			}
			chain[links] = name
			links++
			if links >= maxChain || !dns.IsSubDomain(z.origin, target) || slices.Contains(chain[:links], target) {
				return
			}
			name, owner = target, target
			continue
		}
		if cut := n.cut; cut != nil && (!exact || n != cut || qtype != dns.TypeDS) {
			if links == 0 {
				res.Authoritative = false
			}
			ns := cut.get(dns.TypeNS)
			res.Ns = ns
			z.additional(res, q, ns, true)
			return
		}
		if i, ok := z.svc[name]; ok && exact {
			switch z.serviceAnswer(res, q, i, owner, qtype, anyClass) {
			case svcDone:
				return
			case svcChase:
				cn := res.Answer[len(res.Answer)-1].(*dns.CNAME)
				chain[links] = name
				links++
				target := cn.Target
				if links >= maxChain || !dns.IsSubDomain(z.origin, target) || slices.Contains(chain[:links], target) {
					return
				}
				name, owner = target, target
				continue
			}
		}
		src := n
		if !exact {
			if n.wild == nil {
				res.Rcode = dns.RcodeNameError
				z.negative(res, anyClass)
				return
			}
			src = n.wild
		}
		rewrite := !exact || owner != name
		switch {
		case qtype == dns.TypeANY:
			rs := src.anyRRset()
			if rs == nil {
				z.negative(res, anyClass)
				return
			}
			res.Answer = appendOwned(res.Answer, rs, owner, rewrite)
			z.additional(res, q, rs, false)
			return
		case qtype == dns.TypeDS && exact && n == z.apex:
			// DS belongs to the parent, which we do not serve (NSD).
			z.negative(res, anyClass)
			return
		}
		if rs := src.get(qtype); rs != nil {
			res.Answer = appendOwned(res.Answer, rs, owner, rewrite)
			z.additional(res, q, rs, false)
			return
		}
		cn := src.get(dns.TypeCNAME)
		if cn == nil {
			z.negative(res, anyClass)
			return
		}
		res.Answer = appendOwned(res.Answer, cn, owner, rewrite)
		chain[links] = name
		links++
		target := strings.ToLower(cn[0].(*dns.CNAME).Target)
		if links >= maxChain || !dns.IsSubDomain(z.origin, target) || slices.Contains(chain[:links], target) {
			return
		}
		name, owner = target, target
	}
}

// redirect answers a name below the DNAME at dn (RFC 6672 §3.1, as NSD
// and Knot do): the DNAME, then a CNAME synthesised from owner to the
// substituted name with the DNAME's TTL. It returns the substituted name
// (canonical, lower case) to follow. When the substituted name is longer
// than 255 bytes the rcode is YXDOMAIN with the DNAME alone (§2.2), and ok
// is false.
func (z *Zone) redirect(res *Result, dn *node, name, owner string) (string, bool) {
	d := dn.get(dns.TypeDNAME)[0].(*dns.DNAME)
	res.Answer = append(res.Answer, d)
	prefix := owner[:len(owner)-len(dn.name)]
	if len(owner) != len(name) || !strings.EqualFold(owner[len(prefix):], dn.name) {
		prefix = name[:len(name)-len(dn.name)]
	}
	target := prefix + d.Target
	if d.Target == "." {
		target = prefix
	}
	if _, err := canonicalName(target, false); err != nil {
		res.Rcode = dns.RcodeYXDomain
		return "", false
	}
	res.Answer = append(res.Answer, &dns.CNAME{
		Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl},
		Target: target,
	})
	return lookupName(target), true
}

// negative puts the negative-caching SOA in authority.
func (z *Zone) negative(res *Result, anyClass bool) {
	if !anyClass {
		res.Ns = z.negSOA
	}
}

// appendOwned appends rrs to dst, as copies owned by owner when rewrite.
func appendOwned(dst, rrs []dns.RR, owner string, rewrite bool) []dns.RR {
	if !rewrite {
		if dst == nil {
			return rrs // shared and clipped: an append by the caller copies
		}
		return append(dst, rrs...)
	}
	if dst == nil {
		dst = make([]dns.RR, 0, len(rrs))
	}
	for _, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Name = owner
		dst = append(dst, c)
	}
	return dst
}

// anyRRset picks the one RRset of an ANY answer (RFC 8482 §4.1) as NSD
// does: a preferred type, else a normal one, else a large DNSSEC one.
func (n *node) anyRRset() []dns.RR {
	var normal, other []dns.RR
	for _, s := range n.rrsets { // sorted by type: the first of a tier wins
		switch s.typ {
		case dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeMX, dns.TypePTR:
			return s.rrs
		case dns.TypeDNSKEY, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			if other == nil {
				other = s.rrs
			}
		default:
			if normal == nil {
				normal = s.rrs
			}
		}
	}
	if normal != nil {
		return normal
	}
	return other
}

// additional adds the A and AAAA RRsets of the in-zone targets of the NS,
// MX and SRV records in rrs. glue allows data at or below a delegation.
func (z *Zone) additional(res *Result, q *Question, rrs []dns.RR, glue bool) {
	var as, aaaas []dns.RR
	var seen []string
	for _, rr := range rrs {
		var target string
		switch v := rr.(type) {
		case *dns.NS:
			target = v.Ns
		case *dns.MX:
			target = v.Mx
		case *dns.SRV:
			target = v.Target
		default:
			return // an RRset has one type
		}
		target = strings.ToLower(target)
		if !dns.IsSubDomain(z.origin, target) || slices.Contains(seen, target) {
			continue
		}
		seen = append(seen, target)
		if i, ok := z.svc[target]; ok {
			if r := q.routeOf(z.snap, i); z.snap.ends[i][r].ok {
				as = append(as, z.snap.serviceRRs(i, r, target, dns.TypeA)...)
				aaaas = append(aaaas, z.snap.serviceRRs(i, r, target, dns.TypeAAAA)...)
			}
			continue
		}
		n, exact := z.closest(target)
		if !glue && n.cut != nil {
			continue
		}
		if !exact {
			if n.wild == nil {
				continue
			}
			n = n.wild
		}
		if a := n.get(dns.TypeA); a != nil {
			as = appendOwned(as, a, target, !exact)
		}
		if a := n.get(dns.TypeAAAA); a != nil {
			aaaas = appendOwned(aaaas, a, target, !exact)
		}
	}
	if len(as)+len(aaaas) == 0 {
		return
	}
	extra := make([]dns.RR, 0, len(res.Extra)+len(as)+len(aaaas))
	extra = append(extra, res.Extra...)
	extra = append(extra, as...)
	res.Extra = append(extra, aaaas...)
}

// What serviceAnswer did.
const (
	svcDone   = iota // the answer is complete
	svcChase         // the last answer RR is a CNAME to follow
	svcStatic        // answer from the zone file's data at the name
)

// serviceAnswer answers at service name i for its route in q.
func (z *Zone) serviceAnswer(res *Result, q *Question, i int, owner string, qtype uint16, anyClass bool) int {
	s := z.snap
	r := q.routeOf(s, i)
	if !s.ends[i][r].ok {
		*res = Result{Rcode: dns.RcodeServerFailure, Zone: z.origin}
		return svcDone
	}
	switch qtype {
	case dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeCNAME:
	default:
		return svcStatic
	}
	if cn := s.serviceRRs(i, r, owner, dns.TypeCNAME); cn != nil {
		res.Answer = append(res.Answer, cn...)
		if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
			return svcDone
		}
		return svcChase
	}
	switch qtype {
	case dns.TypeCNAME:
		return svcStatic
	case dns.TypeANY:
		if rrs := s.serviceRRs(i, r, owner, dns.TypeA); rrs != nil {
			res.Answer = append(res.Answer, rrs...)
			return svcDone
		}
		if rrs := s.serviceRRs(i, r, owner, dns.TypeAAAA); rrs != nil {
			res.Answer = append(res.Answer, rrs...)
			return svcDone
		}
		return svcStatic
	}
	if rrs := s.serviceRRs(i, r, owner, qtype); rrs != nil {
		res.Answer = append(res.Answer, rrs...)
	} else {
		z.negative(res, anyClass)
	}
	return svcDone
}
