package geo

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
)

// Rule is one client group of a service: the clients it matches and the
// route they get. A client matches a rule when any of its lists matches.
type Rule struct {
	// Name is the route name (a failover route of the service).
	Name string
	// Continents are continent codes: AF AN AS EU NA OC SA.
	Continents []string
	// Countries are ISO 3166-1 alpha-2 codes ("GB").
	Countries []string
	// Subdivisions are ISO 3166-2 codes ("US-TX"): country, dash, code.
	Subdivisions []string
	// ASNs are autonomous system numbers.
	ASNs []uint32
	// Prefixes are client networks; each must be masked (192.0.2.0/24, not
	// 192.0.2.1/24).
	Prefixes []netip.Prefix
	// Nearest, when not empty, makes this a nearest-site rule: the client
	// goes to the route "<Name>/<site>" of the site closest to it by
	// great-circle distance (see [ExpandNearest] for the routes themselves).
	// Without any list above, a nearest rule matches every client whose
	// location has coordinates; a client it matches by a list but whose
	// coordinates are unknown gets the route of the first site.
	Nearest []Site
}

// Site is a site's position for nearest-site routing, in degrees.
type Site struct {
	Name                string
	Latitude, Longitude float64
}

// level is how specific a match is; higher wins. The order is abh/geodns's
// targeting order (ip, asn, region, country, continent, global), with
// "any client with coordinates" of a bare nearest rule just above global.
type level uint8

const (
	levelDefault level = iota
	levelCoordinates
	levelContinent
	levelCountry
	levelSubdivision
	levelASN
	levelPrefix
)

// Router maps a client's [Location] to one of a service's routes, the most
// specific match winning: prefix (the longest) > ASN > subdivision > country
// > continent > any client with coordinates (a bare nearest rule) > the
// default. It is immutable and safe for concurrent use; Route allocates
// nothing.
type Router struct {
	routes      []string // [0] is the default
	continent   map[string]match
	country     map[string]match
	subdivision map[string]match
	asn         map[uint32]match
	prefixes    []prefixRule // longest first
	anyCoords   *match       // the bare nearest rule, if any
	nearest     [][]Site     // per nearest rule: its sites
	usesCity    bool         // some rule reads the city/country record
	usesASN     bool
}

// match is what a rule decides: a fixed route index, or a nearest rule
// (index into Router.nearest) whose route is base + index of the nearest
// site.
type match struct {
	route   int
	nearest int // -1: a fixed route
}

type prefixRule struct {
	p netip.Prefix
	m match
}

var continents = map[string]bool{"AF": true, "AN": true, "AS": true, "EU": true, "NA": true, "OC": true, "SA": true}

// NewRouter compiles rules with def as the route of clients no rule
// matches. Route indices are: 0 for def, then each rule's route in rule
// order (a nearest rule contributes one route per site, in its Nearest
// order). Codes are matched case-insensitively. It refuses, with every
// problem joined and each naming the rule and list: an empty or duplicate
// route name, a rule that can match nothing, a malformed code, prefix or
// coordinate, an unmasked prefix, and a value listed by two rules (which
// would make "most specific" ambiguous).
func NewRouter(def string, rules []Rule) (*Router, error) {
	r := &Router{
		routes:      []string{def},
		continent:   map[string]match{},
		country:     map[string]match{},
		subdivision: map[string]match{},
		asn:         map[uint32]match{},
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if def == "" {
		bad("default route: empty name")
	}
	names := map[string]bool{def: true}
	owner := map[string]string{} // "country GB" -> rule name
	claim := func(rule, key string) bool {
		if o, ok := owner[key]; ok {
			bad("route %q: %s is also in route %q", rule, key, o)
			return false
		}
		owner[key] = rule
		return true
	}
	for i, ru := range rules {
		where := fmt.Sprintf("route %q", ru.Name)
		if ru.Name == "" {
			where = fmt.Sprintf("rules[%d]", i)
			bad("%s: empty name", where)
		}
		m := match{route: len(r.routes), nearest: -1}
		if len(ru.Nearest) > 0 {
			m.nearest = len(r.nearest)
			r.nearest = append(r.nearest, slices.Clone(ru.Nearest))
			r.usesCity = true
			seen := map[string]bool{}
			for j, s := range ru.Nearest {
				switch {
				case s.Name == "" || strings.Contains(s.Name, "/"):
					bad("%s: nearest[%d]: site name %q must be non-empty without \"/\"", where, j, s.Name)
				case seen[s.Name]:
					bad("%s: nearest[%d]: site %q listed twice", where, j, s.Name)
				case !(s.Latitude >= -90 && s.Latitude <= 90) || !(s.Longitude >= -180 && s.Longitude <= 180):
					bad("%s: nearest[%d]: site %q coordinates [%v, %v] out of range (latitude -90..90, longitude -180..180)",
						where, j, s.Name, s.Latitude, s.Longitude)
				}
				seen[s.Name] = true
				r.routes = append(r.routes, NearestRoute(ru.Name, s.Name))
			}
		} else {
			r.routes = append(r.routes, ru.Name)
		}
		for _, n := range r.routes[m.route:] {
			if names[n] && ru.Name != "" {
				bad("%s: route name %q used twice", where, n)
			}
			names[n] = true
		}
		lists := len(ru.Continents) + len(ru.Countries) + len(ru.Subdivisions) + len(ru.ASNs) + len(ru.Prefixes)
		if lists == 0 {
			if m.nearest < 0 {
				bad("%s: matches no client: give continents, countries, subdivisions, asns, prefixes or nearest", where)
			} else if r.anyCoords != nil {
				bad("%s: a second nearest rule without a list can never match", where)
			} else {
				mm := m
				r.anyCoords = &mm
			}
		}
		for j, c := range ru.Continents {
			c = strings.ToUpper(c)
			if !continents[c] {
				bad("%s: continents[%d]: %q is not a continent code (AF AN AS EU NA OC SA)", where, j, ru.Continents[j])
			} else if claim(ru.Name, "continent "+c) {
				r.continent[c] = m
				r.usesCity = true
			}
		}
		for j, c := range ru.Countries {
			c = strings.ToUpper(c)
			if !isAlpha2(c) {
				bad("%s: countries[%d]: %q is not an ISO 3166-1 alpha-2 code", where, j, ru.Countries[j])
			} else if claim(ru.Name, "country "+c) {
				r.country[c] = m
				r.usesCity = true
			}
		}
		for j, c := range ru.Subdivisions {
			c = strings.ToUpper(c)
			if !isSubdivision(c) {
				bad("%s: subdivisions[%d]: %q is not an ISO 3166-2 code such as \"US-TX\"", where, j, ru.Subdivisions[j])
			} else if claim(ru.Name, "subdivision "+c) {
				r.subdivision[c] = m
				r.usesCity = true
			}
		}
		for j, a := range ru.ASNs {
			if a == 0 {
				bad("%s: asns[%d]: 0 is not an AS number", where, j)
			} else if claim(ru.Name, fmt.Sprintf("asn %d", a)) {
				r.asn[a] = m
				r.usesASN = true
			}
		}
		for j, p := range ru.Prefixes {
			switch {
			case !p.IsValid():
				bad("%s: prefixes[%d]: invalid prefix", where, j)
			case p != p.Masked():
				bad("%s: prefixes[%d]: %v has host bits set: write %v", where, j, p, p.Masked())
			case p.Addr().Is4In6():
				bad("%s: prefixes[%d]: %v: write IPv4 prefixes in IPv4 form", where, j, p)
			default:
				if claim(ru.Name, "prefix "+p.String()) {
					r.prefixes = append(r.prefixes, prefixRule{p: p, m: m})
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortStableFunc(r.prefixes, func(a, b prefixRule) int { return cmp.Compare(b.p.Bits(), a.p.Bits()) })
	return r, nil
}

func isAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func isSubdivision(s string) bool {
	if len(s) < 4 || len(s) > 6 || s[2] != '-' || !isAlpha2(s[:2]) {
		return false
	}
	for _, c := range []byte(s[3:]) {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// NearestRoute is the name of the route of site within nearest rule route:
// "<route>/<site>".
func NearestRoute(route, site string) string { return route + "/" + site }

// Routes returns the route names by index: the default first. Shared: do
// not modify.
func (r *Router) Routes() []string { return r.routes }

// Needs reports which databases Route reads: the city/country one (for
// continents, countries, subdivisions and coordinates) and the ASN one.
// Prefix rules read neither.
func (r *Router) Needs() (city, asn bool) {
	if r == nil {
		return false, false
	}
	return r.usesCity, r.usesASN
}

// Static reports whether every client gets the default route (no rules):
// the answer is the same for everyone, and its ECS scope is 0.
func (r *Router) Static() bool { return len(r.routes) == 1 }

// Route returns the index (into [Router.Routes]) of loc's route, and the
// scope: the prefix length of the client network over which this decision
// cannot change (RFC 7871 SCOPE PREFIX-LENGTH before capping by the source
// prefix). The scope is 0 when the router has no rules; otherwise it is the
// longest of the database networks whose data the rules read (loc.Prefix
// for continents, countries, subdivisions and coordinates, loc.ASNPrefix for
// ASNs) and of the prefix rules' boundaries around loc.Addr; when a prefix
// or ASN rule decides, the less specific data does not count. A nil Router
// routes everyone to index 0.
func (r *Router) Route(loc *Location) (route, scope int) {
	if r == nil || len(r.routes) == 1 {
		return 0, 0
	}
	// Prefix rules: the longest containing the address wins; the scope
	// also excludes every prefix rule that does not contain it.
	pm, scope := r.prefixMatch(loc.Addr)
	if pm != nil {
		return r.resolve(*pm, loc), scope
	}
	if r.usesASN {
		scope = max(scope, loc.ASNPrefix.Bits())
		if loc.ASN != 0 {
			if m, ok := r.asn[loc.ASN]; ok {
				return r.resolve(m, loc), scope
			}
		}
	}
	if !r.usesCity {
		return 0, scope
	}
	return r.cityRoute(loc), max(scope, loc.Prefix.Bits())
}

// resolve turns a match into a route index.
func (r *Router) resolve(m match, loc *Location) int {
	if m.nearest < 0 {
		return m.route
	}
	sites := r.nearest[m.nearest]
	if !loc.HasCoordinates {
		return m.route
	}
	best, bestD := 0, math.Inf(1)
	for i, s := range sites {
		if d := Distance(loc.Latitude, loc.Longitude, s.Latitude, s.Longitude); d < bestD {
			best, bestD = i, d
		}
	}
	return m.route + best
}

// commonBits is the number of leading bits a and b (same family) share.
func commonBits(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	n := 0
	if a.Is4() {
		n = 96
	}
	bits := 0
	for i := n / 8; i < 16; i++ {
		if d := x[i] ^ y[i]; d != 0 {
			for d&0x80 == 0 {
				bits++
				d <<= 1
			}
			return bits
		}
		bits += 8
	}
	return bits
}

// earthRadius is the mean Earth radius in kilometres (IUGG).
const earthRadius = 6371.0088

// Distance returns the great-circle distance in kilometres between two
// points given in degrees (haversine formula on a sphere).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(min(a, 1)))
}

// Expanded is one failover route made from a nearest rule.
type Expanded struct {
	Name  string   // "<route>/<site>"
	Site  string   // the site this route starts at
	Sites []string // every site, nearest to Site first (Site itself first)
}

// ExpandNearest returns the failover routes of a nearest rule named route
// over sites: one per site, in sites order, each listing every site by
// great-circle distance from it (ties keep the sites order). The node
// builds the service's failover routes from these; [Router.Route] returns
// their names.
func ExpandNearest(route string, sites []Site) []Expanded {
	out := make([]Expanded, 0, len(sites))
	for _, from := range sites {
		order := slices.Clone(sites)
		slices.SortStableFunc(order, func(a, b Site) int {
			switch {
			case a.Name == from.Name:
				return -1
			case b.Name == from.Name:
				return 1
			}
			return cmp.Compare(Distance(from.Latitude, from.Longitude, a.Latitude, a.Longitude),
				Distance(from.Latitude, from.Longitude, b.Latitude, b.Longitude))
		})
		e := Expanded{Name: NearestRoute(route, from.Name), Site: from.Name}
		for _, s := range order {
			e.Sites = append(e.Sites, s.Name)
		}
		out = append(out, e)
	}
	return out
}
