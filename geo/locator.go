// Package geo tells where a client is and which route serves it: a
// [Locator] maps an address to a [Location] from MaxMind GeoIP2/GeoLite2
// databases (the project's only user of geoip2), and a [Router] maps a
// location to one of a service's route names by rules, most specific
// first; a [Table] is a router compiled over a locator's database, which
// routes an address directly and gives the widest exact ECS scope. All are
// immutable after construction and safe for concurrent use; a reload
// builds new ones and the caller swaps them.
package geo

import (
	"errors"
	"fmt"
	"iter"
	"net/netip"
	"os"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is what the databases say about one address. The zero value
// means "nothing known": the default route.
type Location struct {
	// Addr is the address looked up (IPv4-mapped IPv6 addresses unmapped).
	Addr netip.Addr
	// Continent is the two-letter continent code ("EU", "NA"), "" if unknown.
	Continent string
	// Country is the ISO 3166-1 alpha-2 code ("GB"), "" if unknown.
	Country string
	// Subdivision is the ISO 3166-2 code of the largest subdivision in the
	// form "US-TX" (country, dash, subdivision code), "" if unknown.
	Subdivision string
	// ASN is the autonomous system number from the ASN database, 0 if
	// unknown or no ASN database is configured.
	ASN uint32
	// Latitude and Longitude in degrees, valid when HasCoordinates.
	Latitude, Longitude float64
	HasCoordinates      bool
	// Prefix is the network of the city/country database record that
	// contains Addr (also when the record is empty): every address in it
	// gets the same Continent, Country, Subdivision and coordinates. The
	// zero Prefix when no database is open.
	Prefix netip.Prefix
	// ASNPrefix is the same for the ASN database.
	ASNPrefix netip.Prefix
}

// place is the part of a Location decoded from one city/country record.
type place struct {
	continent, country, subdivision string
	lat, lon                        float64
	coords                          bool
}

// cityRecord is the part of a city or country record that routing uses:
// decoding only these fields (not the localised names) keeps Open fast.
type cityRecord struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

type asnRecord struct {
	Number uint32 `maxminddb:"autonomous_system_number"`
}

// Locator looks addresses up in a city or country database and an optional
// ASN database. It is immutable and safe for concurrent use without locks.
// Open decodes every data record once into a map keyed by the record's
// offset, so a lookup is a search tree walk plus a map read and allocates
// nothing.
type Locator struct {
	city, asn         *maxminddb.Reader
	cityType, asnType string
	places            map[uintptr]*place
	asns              map[uintptr]uint32
}

// Open reads the city or country database at cityPath (a GeoIP2/GeoLite2
// City or Country mmdb, or a compatible one such as DB-IP's, as geoip2
// accepts them) and, unless asnPath is "", the ASN database at asnPath. It
// verifies both completely (search tree and data section) and decodes every
// record, so that a truncated or corrupt file is refused here rather than
// met while answering; this takes time and memory in proportion to the
// database's networks and distinct records. Errors name the file. A reload opens a new Locator
// and swaps it in only when Open succeeded.
func Open(cityPath, asnPath string) (*Locator, error) {
	l := &Locator{}
	var err error
	if l.city, l.cityType, err = openDB(cityPath, "city"); err != nil {
		return nil, err
	}
	codes := map[string]string{} // the few thousand distinct codes, stored once
	intern := func(s string) string {
		if v, ok := codes[s]; ok {
			return v
		}
		codes[s] = s
		return s
	}
	if l.places, err = decodeAll(l.city, func(res maxminddb.Result) (*place, error) {
		var c cityRecord
		if err := res.Decode(&c); err != nil {
			return nil, err
		}
		p := &place{continent: intern(c.Continent.Code), country: intern(c.Country.ISOCode)}
		if len(c.Subdivisions) > 0 && c.Subdivisions[0].ISOCode != "" && p.country != "" {
			p.subdivision = intern(p.country + "-" + c.Subdivisions[0].ISOCode)
		}
		if c.Location.Latitude != nil && c.Location.Longitude != nil {
			p.lat, p.lon, p.coords = *c.Location.Latitude, *c.Location.Longitude, true
		}
		return p, nil
	}); err != nil {
		return nil, fmt.Errorf("geo: city database %s: %w", cityPath, err)
	}
	if asnPath == "" {
		return l, nil
	}
	if l.asn, l.asnType, err = openDB(asnPath, "asn"); err != nil {
		return nil, err
	}
	if l.asns, err = decodeAll(l.asn, func(res maxminddb.Result) (uint32, error) {
		var a asnRecord
		err := res.Decode(&a)
		return a.Number, err
	}); err != nil {
		return nil, fmt.Errorf("geo: asn database %s: %w", asnPath, err)
	}
	return l, nil
}

// openDB reads and checks one database: geoip2 must accept its type for
// the kind of lookup ("city" or "asn"), and the whole file must verify.
func openDB(path, kind string) (*maxminddb.Reader, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("geo: %s database: %w", kind, err)
	}
	fail := func(err error) (*maxminddb.Reader, string, error) {
		return nil, "", fmt.Errorf("geo: %s database %s: %w", kind, path, err)
	}
	db, err := geoip2.OpenBytes(b)
	if err != nil {
		return fail(err)
	}
	probe := netip.IPv4Unspecified()
	if kind == "city" {
		_, err = db.City(probe)
	} else {
		_, err = db.ASN(probe)
	}
	var ierr geoip2.InvalidMethodError
	if errors.As(err, &ierr) {
		return fail(fmt.Errorf("database type %q has no %s data", db.Metadata().DatabaseType, kind))
	}
	if err != nil {
		return fail(err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return fail(err)
	}
	if err := r.Verify(); err != nil {
		return fail(fmt.Errorf("corrupt: %w", err))
	}
	return r, r.Metadata.DatabaseType, nil
}

// decodeAll decodes every distinct data record of r once.
func decodeAll[T any](r *maxminddb.Reader, decode func(maxminddb.Result) (T, error)) (map[uintptr]T, error) {
	out := make(map[uintptr]T)
	for res := range r.Networks() {
		if err := res.Err(); err != nil {
			return nil, err
		}
		off := res.Offset()
		if _, ok := out[off]; ok {
			continue
		}
		v, err := decode(res)
		if err != nil {
			return nil, fmt.Errorf("record for %v: %w", res.Prefix(), err)
		}
		out[off] = v
	}
	return out, nil
}

// Networks yields the networks of the city/country database that have a
// record (benchmarks draw client subnets from them).
func (l *Locator) Networks() iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		for res := range l.city.Networks(maxminddb.SkipEmptyValues()) {
			if res.Err() != nil || !yield(res.Prefix()) {
				return
			}
		}
	}
}

// DatabaseTypes returns the database_type metadata of the city/country
// database and of the ASN database ("" when none).
func (l *Locator) DatabaseTypes() (city, asn string) { return l.cityType, l.asnType }

// Lookup returns what the databases know about addr. An address that no
// record covers and an invalid address give the fields of the zero
// Location (Prefix still says which network that holds for). A nil Locator
// knows nothing. Lookup allocates nothing.
func (l *Locator) Lookup(addr netip.Addr) Location { return l.LookupOnly(addr, true, true) }

// LookupOnly is Lookup reading only the databases asked for: city for the
// city/country fields and Prefix, asn for ASN and ASNPrefix (see
// [Router.Needs]); the others stay zero. It saves a search tree walk per
// query when no rule reads that database.
func (l *Locator) LookupOnly(addr netip.Addr, city, asn bool) Location {
	addr = addr.Unmap().WithZone("")
	loc := Location{Addr: addr}
	if l == nil || !addr.IsValid() {
		return loc
	}
	if city {
		res := l.city.Lookup(addr)
		if res.Err() == nil {
			loc.Prefix = res.Prefix()
		}
		if res.Found() {
			if p := l.places[res.Offset()]; p != nil {
				loc.Continent, loc.Country, loc.Subdivision = p.continent, p.country, p.subdivision
				loc.Latitude, loc.Longitude, loc.HasCoordinates = p.lat, p.lon, p.coords
			}
		}
	}
	if asn && l.asn != nil {
		res := l.asn.Lookup(addr)
		if res.Err() == nil {
			loc.ASNPrefix = res.Prefix()
		}
		if res.Found() {
			loc.ASN = l.asns[res.Offset()]
		}
	}
	return loc
}
