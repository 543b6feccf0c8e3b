package geo

import (
	"math/bits"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Table is a [Router] compiled against a [Locator]'s city/country database,
// as gdnsd's geoip plugin compiles its maps: every network of the database
// is given its route once, neighbouring networks with the same route are
// merged, and a lookup is a binary search over the merged ranges. It
// answers the route Router.Route would, without a Location, and with the
// widest ECS scope that is still exact: the largest prefix around the
// address whose every address gets the same route (where Route says the
// database network's prefix). Immutable; safe for concurrent use; Route
// allocates nothing.
type Table struct {
	r      *Router
	v4, v6 []span // sorted, contiguous from the first start to the last end
}

// span is a range of addresses [lo, hi] (128-bit, IPv4 in the low 32 bits
// of its own table) with one route; route < 0: not covered by the database
// walk (aliases, gaps): use Router.Route on a Location instead.
type span struct {
	lo, hi u128
	route  int32
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var x u128
	for i := range 8 {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[i+8])
	}
	return x
}

// blockOf returns the first (start) and last (end) address of the block
// of prefix length l around a, in an address space of width bits.
func blockOf(a u128, l, width int) (start, end u128) {
	host := width - l // bits below the prefix
	var mhi, mlo uint64
	switch {
	case host >= 128:
		mhi, mlo = ^uint64(0), ^uint64(0)
	case host >= 64:
		mhi, mlo = (uint64(1)<<(host-64))-1, ^uint64(0)
	default:
		mlo = (uint64(1) << host) - 1
	}
	return u128{a.hi &^ mhi, a.lo &^ mlo}, u128{a.hi | mhi, a.lo | mlo}
}

// Compile returns r's table over l's city database, or nil when r has no
// rules (Static), reads the ASN database (ASN data has other networks:
// Route on a Location decides), or l is nil. It walks every network of the
// database once (seconds for a full GeoLite2-City).
func (r *Router) Compile(l *Locator) *Table {
	if r == nil || l == nil || r.Static() || r.usesASN {
		return nil
	}
	t := &Table{r: r}
	add := func(tab *[]span, lo, hi u128, route int32) {
		s := *tab
		if n := len(s); n > 0 {
			last := &s[n-1]
			if last.hi.next() != lo { // a gap: not walked
				s = append(s, span{lo: last.hi.next(), hi: u128{}, route: -1})
				s[len(s)-1].hi = prev(lo)
				last = &s[len(s)-1]
			}
			if last.route == route {
				last.hi = hi
				*tab = s
				return
			}
		}
		*tab = append(s, span{lo: lo, hi: hi, route: route})
	}
	for res := range l.city.Networks(maxminddb.IncludeNetworksWithoutData()) {
		if res.Err() != nil {
			return nil
		}
		p := res.Prefix()
		loc := Location{Addr: p.Addr(), Prefix: p}
		if res.Found() {
			if pl := l.places[res.Offset()]; pl != nil {
				loc.Continent, loc.Country, loc.Subdivision = pl.continent, pl.country, pl.subdivision
				loc.Latitude, loc.Longitude, loc.HasCoordinates = pl.lat, pl.lon, pl.coords
			}
		}
		route := int32(r.cityRoute(&loc))
		width := 128
		tab := &t.v6
		if p.Addr().Is4() {
			width, tab = 32, &t.v4
		}
		lo, hi := blockOf(toU128(p.Addr()), p.Bits(), width)
		add(tab, lo, hi, route)
	}
	return t
}

func prev(a u128) u128 {
	if a.lo == 0 {
		return u128{a.hi - 1, ^uint64(0)}
	}
	return u128{a.hi, a.lo - 1}
}

// Route returns Router.Route's route for a client at addr and the widest
// exact scope, and ok; ok is false for an address the table does not cover
// (ask Router.Route with the Locator's Location instead).
func (t *Table) Route(addr netip.Addr) (route, scope int, ok bool) {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return 0, 0, false
	}
	// Prefix rules first, exactly as Router.Route.
	m, pscope := t.r.prefixMatch(addr)
	if m != nil {
		if m.nearest >= 0 {
			return 0, 0, false // the site depends on coordinates
		}
		return m.route, pscope, true
	}
	tab, width := t.v6, 128
	if addr.Is4() {
		tab, width = t.v4, 32
	}
	a := toU128(addr)
	lo, hi := 0, len(tab) // the first span whose end is >= a
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if tab[m].hi.less(a) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(tab) || a.less(tab[lo].lo) || tab[lo].route < 0 {
		return 0, 0, false
	}
	s := &tab[lo]
	// The widest block around a inside the span: it must leave out the
	// address just below the span and the one just above it, so its
	// prefix is one bit longer than what a shares with each of them.
	l := 0
	if s.lo != (u128{}) {
		l = max(l, common(a, prev(s.lo), width)+1)
	}
	if top := (u128{0, 1<<32 - 1}); width == 128 && s.hi != (u128{^uint64(0), ^uint64(0)}) || width == 32 && s.hi != top {
		l = max(l, common(a, s.hi.next(), width)+1)
	}
	return int(s.route), max(pscope, l), true
}

// common is the number of leading bits a and b share within width bits.
func common(a, b u128, width int) int {
	n := 0
	if x := a.hi ^ b.hi; x != 0 {
		n = bits.LeadingZeros64(x)
	} else {
		n = 64 + bits.LeadingZeros64(a.lo^b.lo)
	}
	return min(n-(128-width), width)
}

// prefixMatch applies the prefix rules: the match of the longest prefix
// rule containing addr (nil: none), and the prefix length over which the
// prefix rules cannot change their verdict.
func (r *Router) prefixMatch(addr netip.Addr) (*match, int) {
	var pm *match
	scope := 0
	if !addr.IsValid() {
		return nil, 0
	}
	for i := range r.prefixes {
		p := r.prefixes[i].p
		if p.Addr().Is4() != addr.Is4() {
			continue
		}
		if p.Contains(addr) {
			if pm == nil {
				pm = &r.prefixes[i].m
			}
			scope = max(scope, p.Bits())
		} else {
			scope = max(scope, commonBits(p.Addr(), addr)+1)
		}
	}
	return pm, scope
}

// cityRoute is Route's decision from the city/country data alone, for a
// router without ASN rules (the prefix rules aside).
func (r *Router) cityRoute(loc *Location) int {
	if loc.Subdivision != "" {
		if m, ok := r.subdivision[loc.Subdivision]; ok {
			return r.resolve(m, loc)
		}
	}
	if loc.Country != "" {
		if m, ok := r.country[loc.Country]; ok {
			return r.resolve(m, loc)
		}
	}
	if loc.Continent != "" {
		if m, ok := r.continent[loc.Continent]; ok {
			return r.resolve(m, loc)
		}
	}
	if r.anyCoords != nil && loc.HasCoordinates {
		return r.resolve(*r.anyCoords, loc)
	}
	return 0
}
