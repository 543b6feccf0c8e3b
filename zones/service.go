package zones

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/geo"
)

// DefaultRoute is the route of a service that has no [geo.Router]: the
// failover core's name for a service's only route.
const DefaultRoute = "default"

// Service is one service bound to DNS names, as the node builds it from
// config: plain values, no TOML.
type Service struct {
	// Name is the service's name in config and in failover.Answer.Service.
	Name string
	// Names are the DNS names that answer with the service's endpoints
	// (any case, trailing dot optional; no wildcards).
	Names []string
	// TTL is the TTL in seconds of the A, AAAA and CNAME records answered
	// for the names (and of their addresses in additional sections).
	TTL uint32
	// Router picks the client's route; its Routes() are failover route
	// names of the service. Nil means every client gets [DefaultRoute].
	Router *geo.Router
}

// Services is a compiled, immutable set of services with the geo locator
// they route by. Build it with [NewServices]; install it with
// [Store.SetServices].
type Services struct {
	locator           *geo.Locator
	list              []service
	byName            map[string]int // canonical FQDN -> index in list
	needCity, needASN bool           // some router reads that database
}

type service struct {
	Service
	names  []string // canonical
	routes []string
	table  *geo.Table // the router compiled over the locator, nil if it cannot be
}

// NewServices compiles services; a router that does not read the ASN
// database is compiled over loc into a [geo.Table] (a walk of the whole
// city database per such service). loc may be nil (no geo database): every
// client then has the zero [geo.Location], so only a router's default
// route (and no prefix rule) applies. It refuses, with every problem
// joined and each naming the service: an empty or duplicate service name,
// an invalid DNS name, a wildcard name, a name bound to two services, a
// TTL above 2^31-1 (RFC 2181 §8), and more than 256 routes (a route index
// is one byte of the server's cache key).
func NewServices(loc *geo.Locator, list []Service) (*Services, error) {
	s := &Services{locator: loc, byName: map[string]int{}}
	var errs []error
	seen := map[string]bool{}
	for i, sv := range list {
		where := fmt.Sprintf("service %q", sv.Name)
		switch {
		case sv.Name == "":
			where = fmt.Sprintf("services[%d]", i)
			errs = append(errs, fmt.Errorf("%s: empty name", where))
		case seen[sv.Name]:
			errs = append(errs, fmt.Errorf("%s: defined twice", where))
		}
		seen[sv.Name] = true
		if sv.TTL > 1<<31-1 {
			errs = append(errs, fmt.Errorf("%s: ttl %d above 2147483647 (RFC 2181 §8)", where, sv.TTL))
		}
		c := service{Service: sv, routes: []string{DefaultRoute}}
		if sv.Router != nil {
			c.routes = sv.Router.Routes()
			city, asn := sv.Router.Needs()
			s.needCity, s.needASN = s.needCity || city, s.needASN || asn
			c.table = sv.Router.Compile(loc)
		}
		if len(c.routes) > 256 {
			errs = append(errs, fmt.Errorf("%s: %d routes: at most 256", where, len(c.routes)))
		}
		if len(sv.Names) == 0 {
			errs = append(errs, fmt.Errorf("%s: no names", where))
		}
		for j, n := range sv.Names {
			name := strings.ToLower(dns.Fqdn(n))
			if _, ok := dns.IsDomainName(name); !ok || name == "." {
				errs = append(errs, fmt.Errorf("%s: names[%d]: %q is not a domain name", where, j, n))
				continue
			}
			if strings.HasPrefix(name, "*.") {
				errs = append(errs, fmt.Errorf("%s: names[%d]: %q: a service name cannot be a wildcard", where, j, n))
				continue
			}
			if other, dup := s.byName[name]; dup {
				errs = append(errs, fmt.Errorf("%s: names[%d]: %s is also a name of service %q", where, j, name, s.list[other].Name))
				continue
			}
			s.byName[name] = len(s.list)
			c.names = append(c.names, name)
		}
		s.list = append(s.list, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// Len returns the number of services; service indices run from 0 to
// Len()-1 in the order given to NewServices.
func (s *Services) Len() int {
	if s == nil {
		return 0
	}
	return len(s.list)
}

// Locator returns the locator the services route by (nil: none).
func (s *Services) Locator() *geo.Locator {
	if s == nil {
		return nil
	}
	return s.locator
}

// Routing is the routing view: what the replicated failover state says
// each (service, route) answers. It is swapped in whole ([Store.SetRouting]);
// never modify one after handing it over.
type Routing struct {
	// Version is failover.State.AnswersVersion(): identical on every node
	// at the same applied index. Zones holding service names serve the SOA
	// serial "zone file serial + Version" (mod 2^32).
	Version uint64
	// Answers has one entry per (service, route).
	Answers []failover.Answer
}

// ends is what one (service, route) answers, parsed from its endpoints.
type ends struct {
	ok    bool // the routing view has an answer for it
	a     []netip.Addr
	aaaa  []netip.Addr
	cname string // canonical FQDN: the first endpoint is a host name
	ttl   uint32 // the replicated TTL of the answer; 0: the service's
}

// parseEnds turns an answer's endpoints into addresses. The first endpoint
// decides: a host name makes the answer a CNAME to it (a CNAME cannot
// share its name with other data, RFC 1034 §3.6.2); otherwise the
// addresses of each family are answered in endpoint order and host names
// among them are left out.
func parseEnds(eps []failover.Endpoint) ends {
	e := ends{ok: true}
	for i, ep := range eps {
		a, err := netip.ParseAddr(ep.Address)
		if err != nil {
			if i == 0 {
				e.cname = strings.ToLower(dns.Fqdn(ep.Address))
				return e
			}
			continue
		}
		a = a.Unmap()
		if a.Is4() {
			e.a = append(e.a, a)
		} else {
			e.aaaa = append(e.aaaa, a)
		}
	}
	return e
}

// serialFor is the SOA serial of a zone with service names: the zone
// file's serial plus the routing version, in RFC 1982 serial arithmetic
// (addition modulo 2^32). Every node derives the same serial from the same
// file and the same replicated version, and each change of the routing
// view (version + k, k < 2^31) is an increase in serial number order, as
// is a bump of the file's serial. Only a routing version that goes
// backwards (a cluster rebuilt from nothing) would need the file's serial
// raised by hand.
func serialFor(file uint32, version uint64) uint32 { return file + uint32(version) }

// bind returns a copy of z that serves the services bound to its names:
// those names (and their empty non-terminals) exist, the SOA serial follows
// the routing version. z itself is not modified.
func bind(z *Zone, snap *Snapshot, names map[string]int, version uint64) *Zone {
	v := *z
	v.snap = snap
	v.svc = names
	v.nodes = make(map[string]*node, len(z.nodes)+2*len(names))
	for k, n := range z.nodes {
		v.nodes[k] = n
	}
	soa := dns.Copy(z.soa).(*dns.SOA)
	soa.Serial = serialFor(z.soa.Serial, version)
	neg := dns.Copy(soa).(*dns.SOA)
	neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	v.soa, v.negSOA = soa, []dns.RR{neg}
	apex := *z.apex
	apex.rrsets = slices.Clone(z.apex.rrsets)
	for i := range apex.rrsets {
		if apex.rrsets[i].typ == dns.TypeSOA {
			apex.rrsets[i].rrs = []dns.RR{soa}
		}
	}
	v.apex = &apex
	v.nodes[z.origin] = &apex
	// Service names that the file does not define, and their empty
	// non-terminals, start to exist; they inherit the delegation above.
	for name := range names {
		for s := name; s != z.origin; {
			if _, ok := v.nodes[s]; ok {
				break
			}
			n := &node{name: s}
			if enc, _ := z.closest(s); enc.cut != nil {
				n.cut = enc.cut
			} else if enc != z.apex && enc.get(dns.TypeNS) != nil {
				n.cut = enc
			}
			v.nodes[s] = n
			i, _ := dns.NextLabel(s, 0)
			s = s[i:]
		}
	}
	return &v
}

// CheckServices reports every conflict between the services and the zone
// data, for the node's configuration check: a service name outside every
// zone; a name at which the zone file has A, AAAA or CNAME records (the
// service owns those; other types are served from the file); a name at or
// below a delegation (answered by the child zone, not by us). Each error
// names the service, the name, and the zone file and line of the other
// definition. The zones are those that would be served together.
func CheckServices(svcs *Services, zs ...*Zone) error {
	if svcs == nil {
		return nil
	}
	snap := NewSnapshot(zs...)
	var errs []error
	for _, sv := range svcs.list {
		for _, name := range sv.names {
			bad := func(format string, args ...any) {
				errs = append(errs, &ServiceNameError{Service: sv.Name, Name: name, Msg: fmt.Sprintf(format, args...)})
			}
			z := snap.zoneFor(name, dns.TypeA)
			if z == nil {
				bad("not in any served zone")
				continue
			}
			n, exact := z.closest(name)
			if n.cut != nil || (n != z.apex && n.get(dns.TypeNS) != nil) {
				cut := n.cut
				if cut == nil {
					cut = n
				}
				bad("at or below the delegation %s of zone %s (%s:%d)", cut.name, z.origin, z.file, cut.line(dns.TypeNS))
				continue
			}
			// A DNAME strictly above the name redirects it (RFC 6672 §2.3), as
			// Lookup does: the service would answer where the zone file and
			// every secondary say the name is redirected.
			if dn := n.dname; dn != nil || (!exact && n.get(dns.TypeDNAME) != nil) {
				if dn == nil {
					dn = n
				}
				bad("below the DNAME %s of zone %s (%s:%d)", dn.name, z.origin, z.file, dn.line(dns.TypeDNAME))
				continue
			}
			if !exact {
				continue
			}
			for _, rs := range n.rrsets {
				if rs.typ == dns.TypeA || rs.typ == dns.TypeAAAA || rs.typ == dns.TypeCNAME {
					bad("the zone file also has %s records there (%s:%d)", dns.Type(rs.typ), z.file, rs.line)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// ServiceNameError is one conflict CheckServices found: a service's name
// and what is wrong with it (the zone file and line of the other definition
// included), so that the caller can say where the name is configured.
type ServiceNameError struct {
	Service string
	Name    string // canonical: lower case, trailing dot
	Msg     string
}

func (e *ServiceNameError) Error() string {
	return fmt.Sprintf("service %q: name %s: %s", e.Service, e.Name, e.Msg)
}

// buildDeps fills snap.deps and snap.wildDeps: for every name whose answer
// can depend on a service's route (a service name; a name whose MX, SRV or
// NS targets are service names; a CNAME chain through such names; a
// service whose endpoint is an in-zone host name), the sorted indices of
// those services, keyed by the lower-case wire form of the name.
func (s *Snapshot) buildDeps() {
	memo := map[string][]int{}
	var visit func(z *Zone, name string, depth int) []int
	visit = func(z *Zone, name string, depth int) []int {
		if d, ok := memo[name]; ok || depth > maxChain {
			return d
		}
		memo[name] = nil // cycle guard
		var out []int
		add := func(ds ...int) {
			for _, d := range ds {
				if !slices.Contains(out, d) {
					out = append(out, d)
				}
			}
		}
		if i, ok := z.svc[name]; ok {
			add(i)
			for r := range s.svcs.list[i].routes {
				if t := s.ends[i][r].cname; t != "" && dns.IsSubDomain(z.origin, t) {
					add(visit(z, t, depth+1)...)
				}
			}
		}
		if n, ok := z.nodes[name]; ok {
			for _, rs := range n.rrsets {
				for _, rr := range rs.rrs {
					var target string
					switch v := rr.(type) {
					case *dns.MX:
						target = v.Mx
					case *dns.SRV:
						target = v.Target
					case *dns.NS:
						target = v.Ns
					case *dns.CNAME:
						if t := strings.ToLower(v.Target); dns.IsSubDomain(z.origin, t) {
							add(visit(z, t, depth+1)...)
						}
						continue
					default:
						continue
					}
					if i, ok := z.svc[strings.ToLower(target)]; ok {
						add(i)
					}
				}
			}
		}
		slices.Sort(out)
		memo[name] = out
		return out
	}
	s.deps = map[string][]int{}
	buf := make([]byte, maxWireName)
	for _, z := range s.sorted {
		if z.svc == nil {
			continue
		}
		for name := range z.nodes {
			clear(memo)
			d := visit(z, name, 0)
			if len(d) == 0 {
				continue
			}
			if strings.HasPrefix(name, "*.") {
				for _, i := range d {
					if !slices.Contains(s.wildDeps, i) {
						s.wildDeps = append(s.wildDeps, i)
					}
				}
				continue
			}
			n, err := dns.PackDomainName(name, buf, 0, nil, false)
			if err == nil {
				s.deps[string(buf[:n])] = d
			}
		}
	}
	slices.Sort(s.wildDeps)
}

const maxWireName = 255

// withServices returns a snapshot of zs serving svcs from rt.
func newSnapshot(zs []*Zone, svcs *Services, rt *Routing) *Snapshot {
	s := NewSnapshot(zs...)
	if svcs.Len() == 0 {
		return s
	}
	s.svcs, s.routing = svcs, rt
	var version uint64
	if rt != nil {
		version = rt.Version
	}
	// What each (service, route) answers.
	idx := map[[2]string]*failover.Answer{}
	if rt != nil {
		for i := range rt.Answers {
			a := &rt.Answers[i]
			idx[[2]string{a.Service, a.Route}] = a
		}
	}
	s.ends = make([][]ends, len(svcs.list))
	for i, sv := range svcs.list {
		s.ends[i] = make([]ends, len(sv.routes))
		for r, route := range sv.routes {
			if a := idx[[2]string{sv.Name, route}]; a != nil {
				s.ends[i][r] = parseEnds(a.Endpoints)
				if t := a.TTL / time.Second; t > 0 && t <= 1<<31-1 {
					s.ends[i][r].ttl = uint32(t)
				}
			}
		}
	}
	// Bind names to the zones that hold them (CheckServices reports the
	// names that fit nowhere or conflict; here they are skipped or served
	// with the service taking precedence).
	byZone := map[string]map[string]int{}
	for i, sv := range svcs.list {
		for _, name := range sv.names {
			z := s.zoneFor(name, dns.TypeA)
			if z == nil {
				continue
			}
			if n, _ := z.closest(name); n.cut != nil {
				continue
			}
			if byZone[z.origin] == nil {
				byZone[z.origin] = map[string]int{}
			}
			byZone[z.origin][name] = i
		}
	}
	for origin, names := range byZone {
		s.zones[origin] = bind(s.zones[origin], s, names, version)
	}
	for i, z := range s.sorted {
		s.sorted[i] = s.zones[z.origin]
	}
	s.buildDeps()
	return s
}

// Dynamic returns the indices (sorted, into the services of the snapshot)
// of the services whose route decides the answer for the name wire, given
// in lower-case uncompressed wire form; nil when the answer is the same
// for every client. The slice is shared: do not modify it. It allocates
// nothing.
func (s *Snapshot) Dynamic(wire []byte) []int {
	if d, ok := s.deps[string(wire)]; ok {
		return d
	}
	return s.wildDeps // a wildcard may synthesize it
}

// Locate looks the client up in the services' geo databases, those that
// some router reads; see [geo.Locator.LookupOnly].
func (s *Snapshot) Locate(client netip.Addr) geo.Location {
	if s.svcs == nil {
		return geo.Location{Addr: client}
	}
	return s.svcs.locator.LookupOnly(client, s.svcs.needCity, s.svcs.needASN)
}

// Route returns the route index of service svc (an index from
// [Snapshot.Dynamic]) for the client at loc, and the ECS scope of that
// decision (see [geo.Router.Route]).
func (s *Snapshot) Route(svc int, loc *geo.Location) (route, scope int) {
	return s.svcs.list[svc].Router.Route(loc)
}

// RouteAddr is Route for the client at addr without a Location, from the
// service's compiled [geo.Table]: the same route, and the widest exact
// scope. ok is false when the service has no table or the table does not
// cover addr: then Locate and Route decide.
func (s *Snapshot) RouteAddr(svc int, addr netip.Addr) (route, scope int, ok bool) {
	t := s.svcs.list[svc].table
	if t == nil {
		return 0, 0, false
	}
	return t.Route(addr)
}

// Static reports whether service svc answers every client the same.
func (s *Snapshot) Static(svc int) bool {
	r := s.svcs.list[svc].Router
	return r == nil || r.Static()
}

// RoutingVersion returns the version of the routing view served (0 when
// none has been set).
func (s *Snapshot) RoutingVersion() uint64 {
	if s.routing == nil {
		return 0
	}
	return s.routing.Version
}

// serviceRRs returns the A and AAAA records of service i for route r
// owned by owner, or the CNAME to its host name, with the service's TTL (the
// routing view's when it carries one).
func (s *Snapshot) serviceRRs(i, r int, owner string, typ uint16) []dns.RR {
	e := &s.ends[i][r]
	ttl := s.svcs.list[i].TTL
	if e.ttl > 0 {
		ttl = e.ttl // the replicated TTL: every node switches at the same log index
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	if e.cname != "" {
		if typ == dns.TypeCNAME {
			return []dns.RR{&dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: e.cname}}
		}
		return nil
	}
	var out []dns.RR
	switch typ {
	case dns.TypeA:
		for _, a := range e.a {
			out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
		}
	case dns.TypeAAAA:
		for _, a := range e.aaaa {
			out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
		}
	}
	return out
}

// routeOf returns the question's route for service i, the default when
// the question has none or an out-of-range one.
func (q *Question) routeOf(s *Snapshot, i int) int {
	if i < len(q.Routes) && int(q.Routes[i]) < len(s.ends[i]) {
		return int(q.Routes[i])
	}
	return 0
}
