package config

// The health check schema: sites, their endpoints, their checks and their sync
// check. This file holds plain data and its validation; the health package
// compiles it into probers.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Check types.
const (
	CheckHTTP  = "http"
	CheckHTTPS = "https"
	CheckTCP   = "tcp"
	CheckTLS   = "tls"
	CheckSMTP  = "smtp"
	CheckDNS   = "dns"
	CheckExec  = "exec"
)

// Defaults and limits of check timing.
const (
	DefaultInterval = 5 * time.Second
	MinInterval     = time.Second
	DefaultRise     = 2
	DefaultFall     = 3
	maxThreshold    = 100
	// DefaultMaxBody is how much of an HTTP body is read (and matched) by default.
	DefaultMaxBody = 64 << 10
	maxMaxBody     = 16 << 20
)

// DefaultPorts is the probed port of each check type when a check sets none.
// tcp has no default: it must be given.
var DefaultPorts = map[string]int{
	CheckHTTP:  80,
	CheckHTTPS: 443,
	CheckTLS:   443,
	CheckSMTP:  25,
	CheckDNS:   53,
}

// CheckDefaults are the timing defaults of every check ([checks]); a check's
// own value wins.
type CheckDefaults struct {
	// Interval between two probes of a check (default 5s, minimum 1s).
	Interval Duration `toml:"interval"`
	// Timeout of one probe (default 80% of the check's interval; must be shorter than it).
	Timeout Duration `toml:"timeout"`
	// Rise is the number of consecutive successes that make a check up (default 2).
	Rise int `toml:"rise"`
	// Fall is the number of consecutive failures that make a check down (default 3).
	Fall int `toml:"fall"`
}

// Site is one location that can serve ([sites.NAME]).
type Site struct {
	// Name is the site's key in [sites]; set by validation.
	Name string `toml:"-"`
	// Endpoints are the addresses (or host names) the site is answered with.
	Endpoints []Endpoint `toml:"endpoints"`
	// Checks are probed against every endpoint, except site-wide checks
	// (those that give url or address), which are probed once.
	Checks []*Check `toml:"checks"`
	// Sync is the resynchronisation check that gates fail-back ([sites.NAME.sync]);
	// nil when the site has none. It is always site-wide: type http or https
	// with url and a json_path comparison, or exec with a command.
	Sync *Check `toml:"sync"`
	// Coordinates are where the site is ([latitude, longitude]); nil when
	// not given. Nearest-site routes need them.
	Coordinates *Coordinates `toml:"coordinates"`
}

// Endpoint is one address of a site. In TOML it is either a string
// ("192.0.2.10", or a host name for a CNAME-style endpoint) or an inline
// table { name = "dal1", address = "192.0.2.10", probe = "127.0.0.1:8443" }.
type Endpoint struct {
	// Name identifies the endpoint within its site (default: Address).
	Name string
	// Address is what DNS answers with: an IP address or a host name.
	Address string
	// Probe is where checks connect, as written: an IP address or host name,
	// optionally with a port ("127.0.0.1:8443"); "" means Address.
	Probe string
	// ProbeHost and ProbePort are Probe (or Address) split; ProbePort is 0
	// unless Probe names a port, in which case it overrides every check's port
	// for this endpoint (useful when endpoints are loopback listeners in tests
	// and demos). Set by validation.
	ProbeHost string `toml:"-"`
	ProbePort int    `toml:"-"`
}

var endpointKeys = map[string]bool{"name": true, "address": true, "probe": true}

// UnmarshalTOML implements toml.Unmarshaler: a string or an inline table.
func (e *Endpoint) UnmarshalTOML(data any) error {
	switch d := data.(type) {
	case string:
		*e = Endpoint{Address: d}
		return nil
	case map[string]any:
		var keys []string
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		*e = Endpoint{}
		for _, k := range keys {
			if !endpointKeys[k] {
				return fmt.Errorf("endpoint: unknown key %q (want name, address, probe)", k)
			}
			s, ok := d[k].(string)
			if !ok {
				return fmt.Errorf("endpoint: %s must be a string, not %T", k, d[k])
			}
			switch k {
			case "name":
				e.Name = s
			case "address":
				e.Address = s
			case "probe":
				e.Probe = s
			}
		}
		if e.Address == "" {
			return fmt.Errorf("endpoint: address missing in %v", d)
		}
		return nil
	default:
		return fmt.Errorf("endpoint must be a string or an inline table {address = ..., probe = ...}, not %T", data)
	}
}

// Check is one health check ([[sites.NAME.checks]]) or a site's sync check.
// After validation the timing fields, Port and the type's defaults are
// resolved: consumers need not apply defaults again.
type Check struct {
	// Name is unique within the site; the sync check is named "sync".
	Name string `toml:"name"`
	// Type is http, https, tcp, tls, smtp, dns or exec.
	Type string `toml:"type"`

	Interval Duration `toml:"interval"`
	Timeout  Duration `toml:"timeout"`
	Rise     int      `toml:"rise"`
	Fall     int      `toml:"fall"`

	// Port probed on each endpoint (default by type, see DefaultPorts; 0 for exec).
	Port int `toml:"port"`
	// URL makes an http/https check site-wide: it is probed once, at the URL's
	// host. The URL's scheme decides between http and https.
	URL string `toml:"url"`
	// Address makes a tcp, tls, smtp, dns or exec check site-wide: host or
	// host:port (the port defaults to Port).
	Address string `toml:"address"`

	// HTTP(S).
	Method string `toml:"method"` // default GET
	Path   string `toml:"path"`   // default "/"
	// Host is sent as the Host header and as TLS SNI (unless ServerName is set),
	// whatever address is probed.
	Host    string            `toml:"host"`
	Headers map[string]string `toml:"headers"`
	// Status lists the accepted status codes; empty means any 2xx.
	Status          []int             `toml:"status"`
	BodyRegexp      Regexp            `toml:"body_regexp"`
	HeaderMatch     map[string]Regexp `toml:"header_match"`
	FollowRedirects bool              `toml:"follow_redirects"`
	// MaxBody caps the bytes read from a body (default 64 KiB); the rest is not read.
	MaxBody int64 `toml:"max_body"`

	// TLS (https, tls, and smtp with starttls). Verification is on unless Insecure.
	ServerName string `toml:"server_name"`
	CAFile     string `toml:"ca_file"`   // PEM roots instead of the system's
	CertFile   string `toml:"cert_file"` // client certificate (with KeyFile)
	KeyFile    string `toml:"key_file"`
	Insecure   bool   `toml:"insecure"`
	// MinValidity fails the check when the certificate expires sooner than this (default 0).
	MinValidity Duration `toml:"min_validity"`
	// WarnValidity keeps the check up but warns when the certificate expires
	// sooner than this (default 14 days for tls, 0 otherwise).
	WarnValidity Duration `toml:"warn_validity"`

	// TCP: Send is written after connecting (followed by "\r\n" unless it
	// ends with "\n"); Expect must then match a line read back (a banner).
	Send   string `toml:"send"`
	Expect Regexp `toml:"expect"`

	// SMTP: banner 220, EHLO (name default: the host name), optional STARTTLS.
	EHLO     string `toml:"ehlo"`
	StartTLS bool   `toml:"starttls"`

	// DNS: one query to the probed server; Answer must match the data of one
	// answer record in zone file form ("192.0.2.10", "10 mx.example.com.",
	// `0 issue "ca.example.net"`), TXT strings joined without quotes.
	Query            string `toml:"query"`
	QType            string `toml:"qtype"` // default A
	RCode            string `toml:"rcode"` // default NOERROR
	Answer           Regexp `toml:"answer"`
	Transport        string `toml:"transport"` // udp (default, TCP on truncation) or tcp
	RecursionDesired bool   `toml:"recursion_desired"`

	// Exec: the command and its arguments, run without a shell.
	Command []string `toml:"command"`

	// Sync comparison (sync checks of type http/https): the JSON body's value at
	// JSONPath compared with Value by Op.
	JSONPath JSONPath  `toml:"json_path"`
	Op       CompareOp `toml:"op"`
	Value    any       `toml:"value"`
}

// SiteWide reports whether the check is probed once for its site rather than
// once per endpoint.
func (c *Check) SiteWide() bool { return c.URL != "" || c.Address != "" }

// Regexp is a regular expression, compiled when the configuration is read.
type Regexp struct{ *regexp.Regexp }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Regexp) UnmarshalText(b []byte) error {
	re, err := regexp.Compile(string(b))
	if err != nil {
		return fmt.Errorf("bad regexp %q: %w", string(b), err)
	}
	r.Regexp = re
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Regexp) MarshalText() ([]byte, error) {
	if r.Regexp == nil {
		return nil, nil
	}
	return []byte(r.String()), nil
}

// Set reports whether a regexp was given.
func (r Regexp) Set() bool { return r.Regexp != nil }

// JSONPath selects a value in a JSON document: keys separated by dots,
// [N] for array elements and ["key"] for keys with unusual characters, with an
// optional leading "$." — e.g. "copy_queue_length", "databases[0].lag",
// `status["db.main"].state`.
type JSONPath struct {
	Text  string
	Steps []PathStep
}

// PathStep is one step of a JSONPath: a key, or an index when IsIndex.
type PathStep struct {
	Key     string
	Index   int
	IsIndex bool
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *JSONPath) UnmarshalText(b []byte) error {
	v, err := ParseJSONPath(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (p JSONPath) MarshalText() ([]byte, error) { return []byte(p.Text), nil }

// ParseJSONPath parses the syntax described at JSONPath.
func ParseJSONPath(s string) (JSONPath, error) {
	p := JSONPath{Text: s}
	bad := func(why string) (JSONPath, error) {
		return JSONPath{}, fmt.Errorf("bad json path %q: %s", s, why)
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(s, "$"), ".")
	if rest == "" {
		return bad("empty")
	}
	needKey := true // a key may start here (start, or after '.')
	for rest != "" {
		switch {
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return bad("unclosed [")
			}
			in := rest[1:end]
			if strings.HasPrefix(in, `"`) {
				// A quoted key may hold ']' : find the closing quote first.
				q := strings.Index(rest[2:], `"]`)
				if q < 0 {
					return bad("unclosed quoted key")
				}
				p.Steps = append(p.Steps, PathStep{Key: rest[2 : 2+q]})
				rest = rest[2+q+2:]
			} else {
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return bad(fmt.Sprintf("index %q is not a number >= 0", in))
				}
				p.Steps = append(p.Steps, PathStep{Index: n, IsIndex: true})
				rest = rest[end+1:]
			}
			needKey = false
		case rest[0] == '.':
			if needKey {
				return bad("empty key")
			}
			rest = rest[1:]
			if rest == "" {
				return bad("ends with '.'")
			}
			needKey = true
		default:
			if !needKey {
				return bad(fmt.Sprintf("missing '.' before %q", rest))
			}
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			key := rest[:end]
			for _, r := range key {
				if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
					return bad(fmt.Sprintf("character %q in key %q: quote the key as [\"...\"]", r, key))
				}
			}
			p.Steps = append(p.Steps, PathStep{Key: key})
			rest = rest[end:]
			needKey = false
		}
	}
	return p, nil
}

// CompareOp is one of == != < <= > >=.
type CompareOp string

// UnmarshalText implements encoding.TextUnmarshaler.
func (o *CompareOp) UnmarshalText(b []byte) error {
	switch s := strings.TrimSpace(string(b)); s {
	case "==", "!=", "<", "<=", ">", ">=":
		*o = CompareOp(s)
		return nil
	default:
		return fmt.Errorf("bad op %q: want one of == != < <= > >=", string(b))
	}
}

// DNSTypes are the query types a dns check may ask for.
var DNSTypes = map[string]uint16{
	"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
	"AAAA": 28, "SRV": 33, "CAA": 257,
}

// DNSRCodes are the response codes a dns check may expect.
var DNSRCodes = map[string]int{
	"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5,
}

// checkField says which check types a type-specific key applies to.
type checkField struct {
	key   string
	set   func(c *Check) bool
	types []string
}

var checkFields = []checkField{
	{"method", func(c *Check) bool { return c.Method != "" }, []string{CheckHTTP, CheckHTTPS}},
	{"path", func(c *Check) bool { return c.Path != "" }, []string{CheckHTTP, CheckHTTPS}},
	{"host", func(c *Check) bool { return c.Host != "" }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"headers", func(c *Check) bool { return c.Headers != nil }, []string{CheckHTTP, CheckHTTPS}},
	{"status", func(c *Check) bool { return c.Status != nil }, []string{CheckHTTP, CheckHTTPS}},
	{"body_regexp", func(c *Check) bool { return c.BodyRegexp.Set() }, []string{CheckHTTP, CheckHTTPS}},
	{"header_match", func(c *Check) bool { return c.HeaderMatch != nil }, []string{CheckHTTP, CheckHTTPS}},
	{"follow_redirects", func(c *Check) bool { return c.FollowRedirects }, []string{CheckHTTP, CheckHTTPS}},
	{"max_body", func(c *Check) bool { return c.MaxBody != 0 }, []string{CheckHTTP, CheckHTTPS}},
	{"url", func(c *Check) bool { return c.URL != "" }, []string{CheckHTTP, CheckHTTPS}},
	{"address", func(c *Check) bool { return c.Address != "" }, []string{CheckTCP, CheckTLS, CheckSMTP, CheckDNS, CheckExec}},
	{"port", func(c *Check) bool { return c.Port != 0 }, []string{CheckHTTP, CheckHTTPS, CheckTCP, CheckTLS, CheckSMTP, CheckDNS}},
	{"server_name", func(c *Check) bool { return c.ServerName != "" }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"ca_file", func(c *Check) bool { return c.CAFile != "" }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"cert_file", func(c *Check) bool { return c.CertFile != "" }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"key_file", func(c *Check) bool { return c.KeyFile != "" }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"insecure", func(c *Check) bool { return c.Insecure }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"min_validity", func(c *Check) bool { return c.MinValidity.Duration != 0 }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"warn_validity", func(c *Check) bool { return c.WarnValidity.Duration != 0 }, []string{CheckHTTP, CheckHTTPS, CheckTLS, CheckSMTP}},
	{"send", func(c *Check) bool { return c.Send != "" }, []string{CheckTCP}},
	{"expect", func(c *Check) bool { return c.Expect.Set() }, []string{CheckTCP}},
	{"ehlo", func(c *Check) bool { return c.EHLO != "" }, []string{CheckSMTP}},
	{"starttls", func(c *Check) bool { return c.StartTLS }, []string{CheckSMTP}},
	{"query", func(c *Check) bool { return c.Query != "" }, []string{CheckDNS}},
	{"qtype", func(c *Check) bool { return c.QType != "" }, []string{CheckDNS}},
	{"rcode", func(c *Check) bool { return c.RCode != "" }, []string{CheckDNS}},
	{"answer", func(c *Check) bool { return c.Answer.Set() }, []string{CheckDNS}},
	{"transport", func(c *Check) bool { return c.Transport != "" }, []string{CheckDNS}},
	{"recursion_desired", func(c *Check) bool { return c.RecursionDesired }, []string{CheckDNS}},
	{"command", func(c *Check) bool { return c.Command != nil }, []string{CheckExec}},
	// Only sync checks compare JSON; finishCheck refuses these elsewhere.
	{"json_path", func(c *Check) bool { return c.JSONPath.Text != "" }, []string{CheckHTTP, CheckHTTPS}},
	{"op", func(c *Check) bool { return c.Op != "" }, []string{CheckHTTP, CheckHTTPS}},
	{"value", func(c *Check) bool { return c.Value != nil }, []string{CheckHTTP, CheckHTTPS}},
}

var checkTypes = []string{CheckHTTP, CheckHTTPS, CheckTCP, CheckTLS, CheckSMTP, CheckDNS, CheckExec}

func (c *Config) finishHealth(v *validator) {
	d := &c.Checks
	if d.Interval.Duration == 0 {
		d.Interval.Duration = DefaultInterval
	} else if d.Interval.Duration < MinInterval {
		v.errorf("checks.interval", "%s is too short (minimum %s)", d.Interval.Duration, MinInterval)
	}
	if d.Timeout.Duration != 0 && d.Timeout.Duration >= d.Interval.Duration {
		v.errorf("checks.timeout", "%s must be shorter than the interval (%s)", d.Timeout.Duration, d.Interval.Duration)
	}
	if d.Rise == 0 {
		d.Rise = DefaultRise
	}
	if d.Fall == 0 {
		d.Fall = DefaultFall
	}
	for _, k := range []struct {
		key string
		n   int
	}{{"checks.rise", d.Rise}, {"checks.fall", d.Fall}} {
		if k.n < 1 || k.n > maxThreshold {
			v.errorf(k.key, "%d is out of range 1..%d", k.n, maxThreshold)
		}
	}

	names := make([]string, 0, len(c.Sites))
	for name := range c.Sites {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Sites[name]
		key := "sites." + name
		if s == nil {
			s = &Site{}
			c.Sites[name] = s
		}
		s.Name = name
		if !isSiteName(name) {
			v.errorf(key, "site name %q: use lower-case letters, digits and '-' (a DNS label)", name)
		}
		c.finishSite(v, key, s)
	}
}

func (c *Config) finishSite(v *validator, key string, s *Site) {
	if len(s.Endpoints) == 0 {
		v.errorf(key+".endpoints", "missing: a site needs at least one endpoint")
	}
	seen := map[string]int{}
	seenAddr := map[string]int{}
	firstHost, firstIP := -1, -1
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		ekey := fmt.Sprintf("%s.endpoints[%d]", key, i)
		e.Address = strings.TrimSpace(e.Address)
		addrOK := isAddrOrHost(e.Address)
		if addrOK {
			a := strings.ToLower(strings.TrimSuffix(e.Address, "."))
			if ip, err := netip.ParseAddr(a); err == nil {
				a = ip.String()
				if firstIP < 0 {
					firstIP = i
				}
			} else if firstHost < 0 {
				firstHost = i
			}
			if j, dup := seenAddr[a]; dup {
				v.errorf(ekey, "address %s is listed twice (also at endpoints[%d])", e.Address, j)
			}
			seenAddr[a] = i
			if firstHost >= 0 && firstIP >= 0 && (firstHost == i || firstIP == i) {
				v.errorf(ekey, "a site's endpoints are either addresses or host names, not both: a host name is answered as a CNAME, which no other record may stand beside (RFC 1034 §3.6.2; endpoints[%d] is an address, endpoints[%d] a host name)", firstIP, firstHost)
			}
		}
		switch {
		case addrOK:
		case numericTLD(e.Address):
			v.errorf(ekey, "address %q is not a valid IPv4 address (and a host name's last label cannot be all digits, RFC 1123 §2.1)", e.Address)
		default:
			v.errorf(ekey, "address %q is neither an IP address nor a host name", e.Address)
		}
		if e.Name == "" {
			e.Name = e.Address
		}
		if j, dup := seen[e.Name]; dup {
			v.errorf(ekey, "endpoint %q is listed twice (also at endpoints[%d])", e.Name, j)
		}
		seen[e.Name] = i
		probe := e.Probe
		if probe == "" {
			probe = e.Address
		}
		host, port, err := splitProbe(probe)
		if err != nil && (e.Probe != "" || addrOK) {
			v.errorf(ekey, "probe %q: %v", e.Probe, err)
		}
		e.ProbeHost, e.ProbePort = host, port
	}
	checkNames := map[string]int{}
	for i, ch := range s.Checks {
		ckey := fmt.Sprintf("%s.checks[%d]", key, i)
		if ch == nil {
			continue
		}
		if ch.Name == "" {
			v.errorf(ckey+".name", "missing: every check needs a name")
		} else if !isCheckName(ch.Name) {
			v.errorf(ckey+".name", "%q: use lower-case letters, digits, '-' and '_'", ch.Name)
		} else if ch.Name == "sync" {
			v.errorf(ckey+".name", `"sync" is reserved for the site's sync check`)
		} else if j, dup := checkNames[ch.Name]; dup {
			v.errorf(ckey+".name", "check %q is defined twice (also at checks[%d])", ch.Name, j)
		} else {
			checkNames[ch.Name] = i
		}
		c.finishCheck(v, ckey, ch, false)
	}
	if s.Sync != nil {
		skey := key + ".sync"
		if s.Sync.Name != "" && s.Sync.Name != "sync" {
			v.errorf(skey+".name", "the sync check is always named \"sync\"")
		}
		s.Sync.Name = "sync"
		c.finishCheck(v, skey, s.Sync, true)
	}
}

// finishCheck applies defaults to one check and validates it.
func (c *Config) finishCheck(v *validator, key string, ch *Check, sync bool) {
	ch.Type = strings.ToLower(strings.TrimSpace(ch.Type))
	known := false
	for _, t := range checkTypes {
		known = known || t == ch.Type
	}
	switch {
	case ch.Type == "":
		v.errorf(key+".type", "missing: want one of %s", strings.Join(checkTypes, ", "))
		return
	case !known:
		v.errorf(key+".type", "unknown check type %q: want one of %s", ch.Type, strings.Join(checkTypes, ", "))
		return
	case sync && ch.Type != CheckHTTP && ch.Type != CheckHTTPS && ch.Type != CheckExec:
		v.errorf(key+".type", "a sync check is of type http, https or exec, not %q", ch.Type)
		return
	}
	for _, f := range checkFields {
		if !f.set(ch) {
			continue
		}
		ok := false
		for _, t := range f.types {
			ok = ok || t == ch.Type
		}
		if !ok {
			v.errorf(key+"."+f.key, "does not apply to a check of type %q", ch.Type)
		}
	}

	// Timing.
	if ch.Interval.Duration == 0 {
		ch.Interval = c.Checks.Interval
	} else if ch.Interval.Duration < MinInterval {
		v.errorf(key+".interval", "%s is too short (minimum %s)", ch.Interval.Duration, MinInterval)
	}
	timeoutKey := key + ".timeout"
	if ch.Timeout.Duration == 0 {
		ch.Timeout = c.Checks.Timeout
		timeoutKey = "checks.timeout"
	}
	if ch.Timeout.Duration == 0 {
		ch.Timeout.Duration = ch.Interval.Duration * 8 / 10
	} else if ch.Timeout.Duration >= ch.Interval.Duration {
		v.errorf(timeoutKey, "%s must be shorter than the interval of %s (%s)", ch.Timeout.Duration, key, ch.Interval.Duration)
	}
	if ch.Rise == 0 {
		ch.Rise = c.Checks.Rise
	} else if ch.Rise < 1 || ch.Rise > maxThreshold {
		v.errorf(key+".rise", "%d is out of range 1..%d", ch.Rise, maxThreshold)
	}
	if ch.Fall == 0 {
		ch.Fall = c.Checks.Fall
	} else if ch.Fall < 1 || ch.Fall > maxThreshold {
		v.errorf(key+".fall", "%d is out of range 1..%d", ch.Fall, maxThreshold)
	}

	// Target.
	if ch.Port == 0 {
		ch.Port = DefaultPorts[ch.Type]
	} else if ch.Port < 1 || ch.Port > 65535 {
		v.errorf(key+".port", "%d is out of range 1..65535", ch.Port)
	}
	if ch.URL != "" {
		u, err := url.Parse(ch.URL)
		switch {
		case err != nil:
			v.errorf(key+".url", "bad url: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			v.errorf(key+".url", "%q: want an http:// or https:// URL", ch.URL)
		case u.Host == "" || u.Hostname() == "":
			v.errorf(key+".url", "%q has no host", ch.URL)
		}
		if ch.Path != "" {
			v.errorf(key+".path", "give the path in url, not both")
		}
	}
	if ch.Address != "" {
		host, port, err := splitProbe(ch.Address)
		if err != nil {
			v.errorf(key+".address", "%q: %v", ch.Address, err)
		} else if port == 0 && ch.Port == 0 && ch.Type != CheckExec {
			v.errorf(key+".address", "%q has no port and type %q has no default: write host:port", ch.Address, ch.Type)
		} else if port == 0 && ch.Type != CheckExec {
			ch.Address = net.JoinHostPort(host, strconv.Itoa(ch.Port))
		}
	}
	if sync && !ch.SiteWide() && ch.Type != CheckExec {
		v.errorf(key+".url", "missing: a sync check of type %q needs the url of the replication status", ch.Type)
	}

	// Type-specific fields.
	switch ch.Type {
	case CheckHTTP, CheckHTTPS:
		c.finishHTTP(v, key, ch, sync)
	case CheckTCP:
		if ch.Port == 0 && ch.Address == "" {
			v.errorf(key+".port", "required for type %q", ch.Type)
		}
	case CheckDNS:
		c.finishDNS(v, key, ch)
	case CheckExec:
		if len(ch.Command) == 0 || strings.TrimSpace(ch.Command[0]) == "" {
			v.errorf(key+".command", "required for type %q: the program and its arguments, e.g. [\"/usr/local/bin/check\", \"--quick\"]", ch.Type)
		}
	}
	if ch.Type == CheckTLS && ch.WarnValidity.Duration == 0 {
		ch.WarnValidity.Duration = 14 * 24 * time.Hour
	}
	if ch.MinValidity.Duration != 0 && ch.WarnValidity.Duration != 0 && ch.WarnValidity.Duration < ch.MinValidity.Duration {
		v.errorf(key+".warn_validity", "%s is shorter than min_validity (%s): the warning would never show", ch.WarnValidity.Duration, ch.MinValidity.Duration)
	}
	c.finishTLSFiles(v, key, ch)
}

func (c *Config) finishHTTP(v *validator, key string, ch *Check, sync bool) {
	if ch.Method == "" {
		ch.Method = "GET"
	}
	ch.Method = strings.ToUpper(ch.Method)
	for _, r := range ch.Method {
		if r < 'A' || r > 'Z' {
			v.errorf(key+".method", "%q is not an HTTP method", ch.Method)
			break
		}
	}
	if ch.URL == "" {
		if ch.Path == "" {
			ch.Path = "/"
		} else if !strings.HasPrefix(ch.Path, "/") {
			v.errorf(key+".path", "%q must start with '/'", ch.Path)
		}
	}
	if ch.Host != "" && !isAddrOrHost(ch.Host) {
		if _, _, err := net.SplitHostPort(ch.Host); err != nil {
			v.errorf(key+".host", "%q is not a host name", ch.Host)
		}
	}
	for i, s := range ch.Status {
		if s < 100 || s > 599 {
			v.errorf(fmt.Sprintf("%s.status", key), "status[%d] = %d is not an HTTP status code", i, s)
		}
	}
	if ch.MaxBody == 0 {
		ch.MaxBody = DefaultMaxBody
	} else if ch.MaxBody < 0 || ch.MaxBody > maxMaxBody {
		v.errorf(key+".max_body", "%d is out of range 1..%d bytes", ch.MaxBody, maxMaxBody)
	}
	hasJSON := ch.JSONPath.Text != "" || ch.Op != "" || ch.Value != nil
	if !sync {
		if hasJSON {
			v.errorf(key, "json_path, op and value belong to a site's sync check ([sites.NAME.sync])")
		}
		return
	}
	switch {
	case ch.JSONPath.Text == "":
		v.errorf(key+".json_path", "required for a sync check of type %q, e.g. \"copy_queue_length\"", ch.Type)
	case ch.Op == "":
		v.errorf(key+".op", "required with json_path: one of == != < <= > >=")
	case ch.Value == nil:
		v.errorf(key+".value", "required with json_path: the value to compare with")
	}
	switch val := ch.Value.(type) {
	case nil:
	case int64, float64:
	case string, bool:
		if ch.Op != "" && ch.Op != "==" && ch.Op != "!=" {
			v.errorf(key+".op", "%s needs a number value, not %T %v", ch.Op, val, val)
		}
	default:
		v.errorf(key+".value", "must be a number, a string or a boolean, not %T", val)
	}
}

func (c *Config) finishDNS(v *validator, key string, ch *Check) {
	if ch.Query == "" {
		v.errorf(key+".query", "required for type %q: the name to ask for", ch.Type)
	} else {
		q := strings.TrimSuffix(ch.Query, ".")
		if q != "" && !isHostName(q) {
			v.errorf(key+".query", "%q is not a domain name", ch.Query)
		}
		ch.Query = q + "."
	}
	if ch.QType == "" {
		ch.QType = "A"
	}
	ch.QType = strings.ToUpper(ch.QType)
	if _, ok := DNSTypes[ch.QType]; !ok {
		v.errorf(key+".qtype", "unsupported query type %q: want one of %s", ch.QType, sortedKeys(DNSTypes))
	}
	if ch.RCode == "" {
		ch.RCode = "NOERROR"
	}
	ch.RCode = strings.ToUpper(ch.RCode)
	if _, ok := DNSRCodes[ch.RCode]; !ok {
		v.errorf(key+".rcode", "unknown rcode %q: want one of %s", ch.RCode, sortedKeys(DNSRCodes))
	}
	if ch.Transport == "" {
		ch.Transport = "udp"
	}
	if ch.Transport != "udp" && ch.Transport != "tcp" {
		v.errorf(key+".transport", "%q: want udp or tcp", ch.Transport)
	}
}

// finishTLSFiles resolves TLS file names relative to the config file and
// checks that they load, so that a bad file is reported where it is named.
func (c *Config) finishTLSFiles(v *validator, key string, ch *Check) {
	for _, f := range []*string{&ch.CAFile, &ch.CertFile, &ch.KeyFile} {
		if *f != "" && !filepath.IsAbs(*f) && c.File != "" {
			*f = filepath.Join(filepath.Dir(c.File), *f)
		}
	}
	if ch.CAFile != "" {
		var pem []byte
		err := smallFile(ch.CAFile)
		if err == nil {
			pem, err = os.ReadFile(ch.CAFile)
		}
		if err != nil {
			v.errorf(key+".ca_file", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			v.errorf(key+".ca_file", "%s holds no PEM certificate", ch.CAFile)
		}
	}
	switch {
	case (ch.CertFile == "") != (ch.KeyFile == ""):
		v.errorf(key+".cert_file", "cert_file and key_file go together")
	case ch.CertFile != "":
		err := smallFile(ch.CertFile)
		if err == nil {
			err = smallFile(ch.KeyFile)
		}
		if err == nil {
			_, err = tls.LoadX509KeyPair(ch.CertFile, ch.KeyFile)
		}
		if err != nil {
			v.errorf(key+".cert_file", "client certificate: %v", err)
		}
	}
	if ch.Insecure && ch.CAFile != "" {
		v.errorf(key+".insecure", "insecure turns verification off: ca_file would be ignored")
	}
}

// splitProbe splits "host", "host:port", "[v6]:port" or a bare IPv6 address.
func splitProbe(s string) (host string, port int, err error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), 0, nil
	}
	if !strings.Contains(s, ":") {
		if !isHostName(s) {
			return "", 0, fmt.Errorf("not an IP address or host name")
		}
		return s, 0, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("want host or host:port: %w", err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	if !isAddrOrHost(h) {
		return "", 0, fmt.Errorf("%q is not an IP address or host name", h)
	}
	return h, n, nil
}

func isAddrOrHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return isHostName(s)
}

// isHostName accepts LDH names (and '_' for service labels), with an
// optional final dot, whose last label is not all digits (RFC 1123 §2.1:
// "192.0.2.300" and "192.0.2" are broken addresses, not names).
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 || numericTLD(s) {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// numericTLD reports whether the last label of s is all digits.
func numericTLD(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isSiteName accepts a lower-case DNS label.
func isSiteName(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func isCheckName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return strings.Join(k, " ")
}

// indexedPath turns a key path reported by the toml decoder, which leaves out
// array-of-tables indexes ("sites.d.checks.send_lin"), into the written path
// with its indexes ("sites.d.checks[1].send_lin"), so that the error names the
// right entry and line. Each call returns a written path not in used, and adds it;
// a path that cannot be matched is returned as it is.
func indexedPath(p *positions, used map[string]bool, path string) string {
	if p == nil {
		return path
	}
	if _, ok := p.lines[path]; ok {
		return path
	}
	best, bestLine := "", 0
	for k, n := range p.lines {
		if !strings.Contains(k, "[") || stripIndexes(k) != path || used[k] {
			continue
		}
		if best == "" || n < bestLine || n == bestLine && len(k) < len(best) {
			best, bestLine = k, n
		}
	}
	if best == "" {
		return path
	}
	used[best] = true
	return best
}

func stripIndexes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '[' {
			if j := strings.IndexByte(s[i:], ']'); j > 0 {
				i += j
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
