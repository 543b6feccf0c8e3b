package config

// Services ([services.NAME]), their geographic routes, the [geo] databases
// and site coordinates: what decides which site a client is sent to.

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
)

// Defaults of a service's policy. down_for rides out a blip that a check's
// fall threshold let through; stable_for makes a repaired site prove itself
// for a minute before an automatic fail-back; min_interval keeps a flapping
// site from moving a service more than once per 30 s (two TTLs' worth of
// resolver caches).
const (
	DefaultTTL         = 30 * time.Second
	DefaultDownFor     = 10 * time.Second
	DefaultStableFor   = 60 * time.Second
	DefaultMinInterval = 30 * time.Second
	// MaxTTL bounds a service's TTL: answers that move must not be cached for long.
	MaxTTL = time.Hour
	// DefaultRouteName is the name of a service's default route (its sites).
	DefaultRouteName = "default"
)

// Geo is the [geo] section: the MaxMind GeoIP2/GeoLite2 databases that
// geographic routes look clients up in. Paths are relative to the config
// file and resolved to full paths by validation, which checks that the files
// exist and are MaxMind DB files.
type Geo struct {
	// Database is a country or city database (continents, countries;
	// subdivisions and coordinates need a city database).
	Database string `toml:"database"`
	// ASNDatabase is an ASN database, needed by routes with asns.
	ASNDatabase string `toml:"asn_database"`
}

// Coordinates are a site's [latitude, longitude] in degrees (WGS 84), used by
// nearest-site routes.
type Coordinates struct {
	Lat, Lon float64
}

// UnmarshalTOML implements toml.Unmarshaler: an array of two numbers.
func (c *Coordinates) UnmarshalTOML(data any) error {
	a, ok := data.([]any)
	if !ok || len(a) != 2 {
		return fmt.Errorf("coordinates must be [latitude, longitude], e.g. [32.78, -96.80]")
	}
	var v [2]float64
	for i, x := range a {
		switch n := x.(type) {
		case float64:
			v[i] = n
		case int64:
			v[i] = float64(n)
		default:
			return fmt.Errorf("coordinates must be numbers, not %T", x)
		}
	}
	if !(v[0] >= -90 && v[0] <= 90) { // also NaN
		return fmt.Errorf("latitude %v is out of range -90..90", v[0])
	}
	if !(v[1] >= -180 && v[1] <= 180) {
		return fmt.Errorf("longitude %v is out of range -180..180", v[1])
	}
	c.Lat, c.Lon = v[0], v[1]
	return nil
}

// Mode is "auto" or "manual": who moves a service, the leader or an operator.
type Mode string

// Modes.
const (
	Auto   Mode = "auto"
	Manual Mode = "manual"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mode) UnmarshalText(b []byte) error {
	switch s := Mode(strings.ToLower(strings.TrimSpace(string(b)))); s {
	case Auto, Manual:
		*m = s
		return nil
	default:
		return fmt.Errorf("bad mode %q: want auto or manual", string(b))
	}
}

// Service is one [services.NAME]: DNS names that always move together, and
// where they are served from. After validation every default is filled in.
type Service struct {
	// Name is the service's key in [services]; set by validation.
	Name string `toml:"-"`
	// Names are the DNS names the service answers for, canonical (lower
	// case, trailing dot), unique across all services.
	Names []FQDN `toml:"names"`
	// Sites in preference order: the default route, for clients that no
	// other route matches.
	Sites []string `toml:"sites"`
	// Failover says who moves the service off a down active site (default auto).
	Failover Mode `toml:"failover"`
	// Failback says who moves it back to a preferred site that is healthy and
	// in sync again (default manual).
	Failback Mode `toml:"failback"`
	// TTL of the service's records (default 30s, at most 1h; whole seconds).
	TTL Duration `toml:"ttl"`
	// DownFor, StableFor, MinInterval: the hold-downs of failover.Policy
	// (defaults 10s, 60s, 30s).
	DownFor     Duration `toml:"down_for"`
	StableFor   Duration `toml:"stable_for"`
	MinInterval Duration `toml:"min_interval"`
	// Routes are client groups ([[services.NAME.routes]]), tried in order:
	// the first that matches a client wins, so write the most specific
	// first. A client no route matches gets the default route (Sites).
	Routes []*Route `toml:"routes"`
}

// Route is one [[services.NAME.routes]]: a client group and its site order.
// A client matches when it matches any of the matchers given (continents,
// countries, subdivisions, asns, prefixes); a nearest route without matchers
// matches every client whose coordinates are known.
type Route struct {
	// Name is unique within the service, a plain label, and not "default".
	Name string `toml:"name"`
	// Continents: two-letter continent codes (AF AN AS EU NA OC SA).
	Continents []Continent `toml:"continents"`
	// Countries: ISO 3166-1 alpha-2 codes (and XK, Kosovo, as MaxMind uses it).
	Countries []Country `toml:"countries"`
	// Subdivisions: ISO 3166-2 codes, country and subdivision ("US-TX").
	Subdivisions []Subdivision `toml:"subdivisions"`
	// ASNs: autonomous system numbers of the client's address.
	ASNs []uint32 `toml:"asns"`
	// Prefixes: client networks ("192.0.2.0/24", "2001:db8::/32"), masked.
	Prefixes []Prefix `toml:"prefixes"`
	// Nearest orders the sites by great-circle distance from the client,
	// nearest first. Sites may then be omitted: validation fills in the
	// service's sites. Every site of a nearest route needs coordinates.
	Nearest bool `toml:"nearest"`
	// Sites in preference order (or the candidates of a nearest route).
	Sites []string `toml:"sites"`
}

// Matchers reports whether the route has any client matcher.
func (r *Route) Matchers() bool {
	return len(r.Continents)+len(r.Countries)+len(r.Subdivisions)+len(r.ASNs)+len(r.Prefixes) > 0
}

// Geographic reports whether the route needs a GeoIP2 lookup (anything but
// prefixes alone).
func (r *Route) Geographic() bool {
	return len(r.Continents)+len(r.Countries)+len(r.Subdivisions)+len(r.ASNs) > 0 || r.Nearest
}

// FQDN is a fully qualified domain name in canonical form: lower case, with
// the trailing dot ("cas.example.com.").
type FQDN string

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *FQDN) UnmarshalText(b []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	if !isHostName(s) || !strings.Contains(strings.TrimSuffix(s, "."), ".") {
		return fmt.Errorf("bad name %q: want a fully qualified domain name like cas.example.com", string(b))
	}
	*f = FQDN(strings.TrimSuffix(s, ".") + ".")
	return nil
}

// Continent is a two-letter continent code as GeoIP2 gives it.
type Continent string

// Continents are the continent codes GeoIP2 uses, with their names.
var continents = map[string]string{
	"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
	"NA": "North America", "OC": "Oceania", "SA": "South America",
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Continent) UnmarshalText(b []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(b)))
	if _, ok := continents[s]; !ok {
		return fmt.Errorf("unknown continent %q: want one of AF AN AS EU NA OC SA", string(b))
	}
	*c = Continent(s)
	return nil
}

// Country is an ISO 3166-1 alpha-2 country code, upper case ("GB").
type Country string

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *Country) UnmarshalText(b []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(b)))
	if !isCountry(s) {
		hint := ""
		if s == "UK" {
			hint = " (the United Kingdom is GB)"
		}
		return fmt.Errorf("unknown country %q: want an ISO 3166-1 alpha-2 code%s", string(b), hint)
	}
	*c = Country(s)
	return nil
}

// Subdivision is an ISO 3166-2 subdivision code, upper case: the country
// code, '-', and one to three letters or digits ("US-TX", "GB-ENG").
type Subdivision string

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Subdivision) UnmarshalText(b []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(b)))
	cc, sub, ok := strings.Cut(s, "-")
	if !ok || !isCountry(cc) || len(sub) < 1 || len(sub) > 3 || strings.Trim(sub, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
		return fmt.Errorf("bad subdivision %q: want an ISO 3166-2 code like \"US-TX\"", string(b))
	}
	*d = Subdivision(s)
	return nil
}

// Country returns the subdivision's country code ("US" for "US-TX").
func (d Subdivision) Country() Country { return Country(string(d)[:2]) }

// Code returns the part after the country ("TX" for "US-TX"), as GeoIP2
// gives a subdivision's iso_code.
func (d Subdivision) Code() string { return string(d)[3:] }

// Prefix is an IP network ("192.0.2.0/24"), stored masked.
type Prefix struct{ netip.Prefix }

// UnmarshalText implements encoding.TextUnmarshaler. Host bits set in the
// address are an error: "192.0.2.1/24" is more likely a typo than a network.
func (p *Prefix) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	v, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("bad prefix %q: want a network like 192.0.2.0/24 or 2001:db8::/32", s)
	}
	if v.Masked() != v {
		return fmt.Errorf("bad prefix %q: host bits set; did you mean %s?", s, v.Masked())
	}
	p.Prefix = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.Prefix.String()), nil }

func isCountry(s string) bool { return countrySet[s] }

var countrySet = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(countryCodes) {
		m[c] = true
	}
	return m
}()

// countryCodes are the ISO 3166-1 alpha-2 codes (Debian iso-codes 4.x, 249
// codes) and XK.
const countryCodes = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS " +
	"BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE " +
	"EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM " +
	"HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC " +
	"LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA " +
	"NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO " +
	"TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW "

// finishServices fills in each service's defaults and validates [geo],
// services and their routes.
func (c *Config) finishServices(v *validator) {
	geo := c.finishGeo(v)
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	owner := map[FQDN]string{} // DNS name -> key path of its first use
	for _, name := range names {
		s := c.Services[name]
		if s == nil {
			s = &Service{}
			c.Services[name] = s
		}
		s.Name = name
		key := "services." + name
		if !isSiteName(name) {
			v.errorf(key, "service name %q: use lower-case letters, digits and '-' (a DNS label)", name)
		}
		c.finishService(v, key, s, geo, owner)
	}
}

func (c *Config) finishService(v *validator, key string, s *Service, geo geoTypes, owner map[FQDN]string) {
	if len(s.Names) == 0 {
		v.errorf(key+".names", "missing: the DNS names of the service, e.g. [\"cas.example.com\"]")
	}
	for i, n := range s.Names {
		nkey := fmt.Sprintf("%s.names[%d]", key, i)
		if other, dup := owner[n]; dup {
			v.errorf(nkey, "%s is also at %s: a name belongs to one service", n, other)
			continue
		}
		owner[n] = nkey
	}
	if len(s.Sites) == 0 {
		v.errorf(key+".sites", "missing: the sites in preference order (the default route), e.g. [\"dallas\", \"losangeles\"]")
	}
	c.checkSites(v, key+".sites", s.Sites, false)
	for _, d := range []struct {
		key string
		d   *Duration
		def time.Duration
	}{{"ttl", &s.TTL, DefaultTTL}, {"down_for", &s.DownFor, DefaultDownFor}, {"stable_for", &s.StableFor, DefaultStableFor}, {"min_interval", &s.MinInterval, DefaultMinInterval}} {
		if !v.defined("services", s.Name, d.key) {
			d.d.Duration = d.def
		}
	}
	if s.Failover == "" {
		s.Failover = Auto
	}
	if s.Failback == "" {
		s.Failback = Manual
	}
	switch t := s.TTL.Duration; {
	case t < time.Second || t > MaxTTL:
		v.errorf(key+".ttl", "%s is out of range 1s..%s", t, MaxTTL)
	case t%time.Second != 0:
		v.errorf(key+".ttl", "%s is not a whole number of seconds (DNS TTLs are seconds)", t)
	}
	if s.StableFor.Duration > 24*time.Hour || s.DownFor.Duration > 24*time.Hour || s.MinInterval.Duration > 24*time.Hour {
		for _, d := range []struct {
			key string
			d   time.Duration
		}{{"down_for", s.DownFor.Duration}, {"stable_for", s.StableFor.Duration}, {"min_interval", s.MinInterval.Duration}} {
			if d.d > 24*time.Hour {
				v.errorf(key+"."+d.key, "%s is more than a day: a hold-down that long is a manual mode (say failover or failback = \"manual\")", d.d)
			}
		}
	}

	routes := map[string]int{}
	catchAll := ""
	for i, r := range s.Routes {
		rkey := fmt.Sprintf("%s.routes[%d]", key, i)
		if r == nil {
			continue
		}
		switch j, dup := routes[r.Name]; {
		case r.Name == "":
			v.errorf(rkey+".name", "missing: every route needs a name (it appears in status and in failoverctl failover --route)")
		case r.Name == DefaultRouteName:
			v.errorf(rkey+".name", "%q is the service's default route (its sites); name this route otherwise", r.Name)
		case !isCheckName(r.Name):
			v.errorf(rkey+".name", "%q: use lower-case letters, digits, '-' and '_'", r.Name)
		case dup:
			v.errorf(rkey+".name", "route %q is defined twice (also at routes[%d])", r.Name, j)
		default:
			routes[r.Name] = i
		}
		if catchAll != "" {
			v.warnf(rkey, "comes after route %q, which matches every located client: it only serves clients without coordinates", catchAll)
		}
		if !r.Matchers() && !r.Nearest {
			v.errorf(rkey, "matches nothing: give continents, countries, subdivisions, asns or prefixes, or nearest = true")
		}
		if r.Nearest && !r.Matchers() && catchAll == "" {
			catchAll = r.Name
		}
		if len(r.Sites) == 0 {
			if r.Nearest {
				r.Sites = slices.Clone(s.Sites)
			} else {
				v.errorf(rkey+".sites", "missing: the sites of this route in preference order")
			}
		}
		c.checkSites(v, rkey+".sites", r.Sites, r.Nearest)
		if r.Geographic() && c.Geo.Database == "" {
			v.errorf(rkey, "a geographic route needs [geo] database (a GeoIP2 country or city database)")
		}
		if len(r.ASNs) > 0 && c.Geo.ASNDatabase == "" {
			v.errorf(rkey+".asns", "needs [geo] asn_database (a GeoLite2/GeoIP2 ASN database)")
		}
		if (len(r.Subdivisions) > 0 || r.Nearest) && !geo.city && geo.known {
			v.errorf(rkey, "subdivisions and nearest need a city database, and [geo] database is a %s database", geo.dbType)
		}
		for j, a := range r.ASNs {
			if a == 0 {
				v.errorf(rkey+".asns", "asns[%d] = 0 is not an AS number", j)
			}
		}
	}
}

// checkSites checks a site list: known, no duplicates, and with coordinates
// when nearest.
func (c *Config) checkSites(v *validator, key string, sites []string, nearest bool) {
	seen := map[string]int{}
	for i, name := range sites {
		skey := fmt.Sprintf("%s[%d]", key, i)
		site, ok := c.Sites[name]
		switch j, dup := seen[name]; {
		case !ok:
			v.errorf(skey, "unknown site %q (known: %s)", name, sortedKeys(c.Sites))
		case dup:
			v.errorf(skey, "site %q is listed twice (also at [%d])", name, j)
		case nearest && site.Coordinates == nil:
			v.errorf(skey, "site %q has no coordinates, which a nearest route needs: add coordinates = [latitude, longitude] to [sites.%s]", name, name)
		}
		seen[name] = i
	}
}

// geoTypes is what validation learnt of the [geo] database.
type geoTypes struct {
	known  bool   // dbType was read from the file's metadata
	dbType string // e.g. "GeoIP2-City"
	city   bool
}

// finishGeo resolves the [geo] paths and checks that they are MaxMind DB
// files of the right kind.
func (c *Config) finishGeo(v *validator) geoTypes {
	g := &c.Geo
	g.Database, g.ASNDatabase = c.path(g.Database), c.path(g.ASNDatabase)
	var out geoTypes
	if g.Database != "" {
		t, err := mmdbType(g.Database)
		switch {
		case err != nil:
			v.errorf("geo.database", "%v", err)
		case strings.Contains(t, "ASN"):
			v.errorf("geo.database", "%s is an ASN database (%s): give it as asn_database, and a country or city database here", g.Database, t)
		case t != "":
			out = geoTypes{known: true, dbType: t, city: strings.Contains(t, "City") || strings.Contains(t, "Enterprise")}
		}
	}
	if g.ASNDatabase != "" {
		t, err := mmdbType(g.ASNDatabase)
		switch {
		case err != nil:
			v.errorf("geo.asn_database", "%v", err)
		case t != "" && !strings.Contains(t, "ASN") && !strings.Contains(t, "ISP") && !strings.Contains(t, "Enterprise"):
			v.errorf("geo.asn_database", "%s is a %s database, not an ASN database", g.ASNDatabase, t)
		}
	}
	return out
}

// mmdbMarker starts the metadata section of a MaxMind DB file (MaxMind DB
// File Format Specification 2.0, "Database Metadata").
var mmdbMarker = []byte("\xab\xcd\xefMaxMind.com")

var errNotMMDB = errors.New("not a MaxMind DB (.mmdb) file")

// mmdbType reads the database_type of a MaxMind DB file: "" when the
// metadata does not say it in the simple encoding; an error when the file
// cannot be read or is not a MaxMind DB file.
func mmdbType(file string) (string, error) {
	meta, err := mmdbMeta(file)
	if err != nil {
		if err == errNotMMDB {
			return "", fmt.Errorf("%s is %w", file, err)
		}
		return "", err
	}
	// The key "database_type" (a UTF-8 string of 13 bytes: control byte
	// 0x4d) is followed by its value, a short UTF-8 string: control byte
	// 0x40|length (length < 29).
	k := bytes.Index(meta, []byte("\x4ddatabase_type"))
	if k < 0 {
		return "", nil
	}
	rest := meta[k+14:]
	if len(rest) == 0 || rest[0]>>5 != 2 || int(rest[0]&0x1f) >= 29 || len(rest) < 1+int(rest[0]&0x1f) {
		return "", nil
	}
	return string(rest[1 : 1+int(rest[0]&0x1f)]), nil
}
