// Package config is geodnsd's TOML configuration: the schema, its defaults,
// and validation whose every error says where (file:line and key path).
// It imports no other package of the project.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a whole geodnsd configuration. Load and Parse return it with
// defaults applied and validated; treat it as read-only afterwards.
type Config struct {
	Node  Node  `toml:"node"`
	DNS   DNS   `toml:"dns"`
	Zones Zones `toml:"zones"`
	HTTP  HTTP  `toml:"http"`
	Log   Log   `toml:"log"`

	// Defaults for every check; each check may override them.
	Checks CheckDefaults `toml:"checks"`
	// Sites by name: endpoints, health checks, the sync check, coordinates.
	Sites map[string]*Site `toml:"sites"`

	// Cluster lists the nodes that agree on decisions, and the timing of
	// that agreement. Without [cluster] (no nodes) the node is a one-node
	// cluster on the same code path; the timing keys still apply.
	Cluster Cluster `toml:"cluster"`
	// Geo names the GeoIP2 databases that geographic routes need.
	Geo Geo `toml:"geo"`
	// Services by name: DNS names that move together between sites.
	Services map[string]*Service `toml:"services"`

	// File is the path the configuration was read from ("" when parsed from memory).
	File string `toml:"-"`
	// Warnings are things that are allowed but deserve an operator's eye
	// (e.g. a min_quorum below a strict majority), positioned like errors,
	// in file order. Load and Parse return them with a valid Config; the
	// caller prints or logs them.
	Warnings []string `toml:"-"`

	pos *positions // where each key was written, for errors found later
}

// Errorf returns a positioned error at key path key (e.g.
// "services.www.names[1]"), as Parse reports its own: for problems found
// after loading, by checks that need more than the file (the zones, the
// geo databases). The line is that of the key, or of its nearest written
// parent.
func (c *Config) Errorf(key, format string, args ...any) *Error {
	return &Error{File: c.File, Line: c.pos.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Node identifies this geodnsd process.
type Node struct {
	// ID names the node (ns1); it is also the default NSID and the CHAOS id.server answer.
	// With [cluster] nodes, it must be one of them.
	ID string `toml:"id"`
	// StateDir holds the raft log, stable store and snapshots. Relative to
	// the config file; "" means a temporary directory made at start and
	// removed at exit (the demo and throw-away one-node runs: nothing
	// survives a restart).
	StateDir string `toml:"state_dir"`
}

// DNS configures the nameserver's sockets and protocol behaviour.
type DNS struct {
	// Listen addresses; each gets UDP and TCP sockets.
	Listen []AddrPort `toml:"listen"`
	// SocketsPerAddress is the number of SO_REUSEPORT UDP sockets per address
	// (0: one per core). On Linux they are the most the server spreads
	// datagrams over: it uses one while one reader keeps up and more only
	// when a trial shows they raise the rate (docs/design.md 3.4).
	SocketsPerAddress int `toml:"sockets_per_address"`
	// UDPSize is the EDNS(0) payload size we advertise and answer within (default 1232).
	// On Linux replies leave with DF and never in fragments (RFC 9715): they
	// are also fitted to what the listening interface's MTU carries.
	UDPSize int `toml:"udp_size"`
	// NSID sent to clients that ask (RFC 5001); default: node.id. "-" turns it off.
	NSID string `toml:"nsid"`
	// VersionBind is the answer to CHAOS TXT version.bind/version.server; empty: REFUSED.
	VersionBind string `toml:"version_bind"`
	// TCPIdleTimeout closes a TCP connection with no query for this long (default 10s).
	TCPIdleTimeout Duration `toml:"tcp_idle_timeout"`
	// TCPMaxConnections bounds concurrent TCP connections (default 1000).
	TCPMaxConnections int `toml:"tcp_max_connections"`
	// TransferAllow lists the networks whose clients may transfer our zones
	// (AXFR over TCP, and IXFR answered with the full zone), e.g.
	// ["192.0.2.53/32"]; empty (the default): every transfer is refused.
	TransferAllow []Prefix `toml:"transfer_allow"`
	// Notify lists the secondaries ("192.0.2.53:53") sent a NOTIFY (RFC
	// 1996) when a zone's serial changes; empty (the default): no NOTIFY,
	// no traffic leaves the node for transfers.
	Notify []AddrPort `toml:"notify"`
	// TSIGKeys are the TSIG keys (RFC 8945) queries may be signed with; a
	// signed query is answered signed, and when keys are listed a transfer
	// must be signed with one of them. Empty (the default): none.
	TSIGKeys []TSIGKey `toml:"tsig_keys"`
	// RRLRate turns on response rate limiting (UDP): at most this many
	// responses per second to one client network (/24, /56); 0 (the
	// default): off.
	RRLRate int `toml:"rrl_rate"`
	// RRLSlip sends every RRLSlip-th limited response truncated (TC)
	// instead of dropping it (default 2, as NSD; 0: drop all).
	RRLSlip int `toml:"rrl_slip"`
	// RRLAllow lists client networks never rate limited.
	RRLAllow []Prefix `toml:"rrl_allow"`
}

// TSIGKey is one TSIG key: { name = "xfr.example.com.", algorithm =
// "hmac-sha256", secret = "<base64>" }.
type TSIGKey struct {
	Name      string `toml:"name"`
	Algorithm string `toml:"algorithm"`
	Secret    string `toml:"secret"`
}

// tsigAlgorithms are the HMAC algorithms of RFC 8945 §6 a key may use: those
// miekg/dns signs and verifies with (it dropped HMAC-MD5, which §6 no longer
// requires; an MD5 key would have been accepted and every query signed with
// it answered SERVFAIL).
var tsigAlgorithms = []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}

// Zones configures where zone files are read from.
type Zones struct {
	// Dir holds one RFC 1035 zone file per zone (*.zone); relative to the config file.
	Dir string `toml:"dir"`
	// ReloadInterval checks the directory for changes this often; 0: only on SIGHUP.
	ReloadInterval Duration `toml:"reload_interval"`
}

// HTTP configures the HTTP side: the public status (/status.json, /api/v2/...,
// /), the admin API (/api/v1/...), /metrics, /healthz, /readyz. CORS on the
// public documents is always "*" (they hold no secrets).
type HTTP struct {
	Listen AddrPort `toml:"listen"`
	// Pprof serves Go's profiler under /debug/pprof/ (off by default: it is
	// for operators on a trusted listener, never on a public one).
	Pprof bool `toml:"pprof"`
	// Tokens are the bearer tokens of the admin API ([[http.tokens]]).
	Tokens []Token `toml:"tokens"`
	// StatusRate is the sustained number of requests per second that one
	// client address may make to the public endpoints (token bucket;
	// default 10; 0 turns the limit off). StatusBurst is the bucket size
	// (default 20).
	StatusRate  float64 `toml:"status_rate"`
	StatusBurst int     `toml:"status_burst"`
	// AdminRate and AdminBurst limit the admin API per client address the
	// same way (default 5 per second, burst 10; 0 turns the limit off).
	AdminRate  float64 `toml:"admin_rate"`
	AdminBurst int     `toml:"admin_burst"`
}

// Log configures logging.
type Log struct {
	Level LogLevel `toml:"level"`
	// Format is "text" or "json".
	Format string `toml:"format"`
}

// Limits owned here and used by the packages that enforce them at start-up
// (dnsserver.New refuses the same values), so that -check-config refuses
// exactly what start-up refuses.
const (
	// MaxNSID is the longest NSID (RFC 5001) in bytes: an error reply with
	// the NSID option and a 255-byte question still fits in 512 bytes.
	MaxNSID = 128
	// MaxTXT is the longest CHAOS TXT answer (version_bind, node.id): one
	// character-string (RFC 1035 §3.3).
	MaxTXT = 255
	// MinUDPSize and MaxUDPSize bound dns.udp_size (RFC 6891 §6.2.5).
	MinUDPSize = 512
	MaxUDPSize = 65535
)

// Error is one configuration problem and where it is.
type Error struct {
	File string // config file, "" when parsed from memory
	Line int    // 1-based, 0 when unknown
	Key  string // key path, e.g. "dns.listen[1]"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads, decodes and validates the configuration file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parse(src, path, true)
}

// Parse decodes and validates configuration text; file is used in errors and
// to resolve relative paths ("" for text that has no file).
func Parse(src []byte, file string) (*Config, error) {
	return parse(src, file, false)
}

// parse is Parse; with files it also checks what the configuration names
// on the file system (zones.dir), as start-up needs it.
func parse(src []byte, file string, files bool) (*Config, error) {
	c := Default()
	c.File = file
	v := &validator{file: file, pos: scanPositions(src), files: files}
	c.pos = v.pos
	md, err := toml.Decode(string(src), c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: file, Line: pe.Position.Line, Key: pe.LastKey, Msg: strings.TrimPrefix(pe.Message, "toml: ")}}
		}
		// Type mismatches come as "toml: line N (last key "k"): message".
		if m := decodeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, Errors{{File: file, Line: line, Key: m[2], Msg: m[3]}}
		}
		return nil, Errors{{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}}
	}
	v.md = md
	used := map[string]bool{}
	for _, k := range md.Undecoded() {
		path := indexedPath(v.pos, used, k.String())
		v.errorf(path, "unknown key %q", k[len(k)-1])
	}
	if len(v.errs) == 0 {
		c.finish(v)
	}
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
		return nil, v.errs
	}
	sort.SliceStable(v.warns, func(i, j int) bool { return v.warns[i].Line < v.warns[j].Line })
	for _, w := range v.warns {
		c.Warnings = append(c.Warnings, w.Error())
	}
	return c, nil
}

var decodeErrRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// Default is the configuration before any file is read.
func Default() *Config {
	return &Config{
		DNS: DNS{
			UDPSize:           1232,
			TCPIdleTimeout:    Duration{10 * time.Second},
			TCPMaxConnections: 1000,
			RRLSlip:           2,
		},
		Zones: Zones{Dir: "zones"},
		HTTP: HTTP{
			StatusRate:  DefaultStatusRate,
			StatusBurst: DefaultStatusBurst,
			AdminRate:   DefaultAdminRate,
			AdminBurst:  DefaultAdminBurst,
		},
		Log:     Log{Level: "info", Format: "text"},
		Cluster: defaultCluster(),
	}
}

// validator collects positioned errors and warnings.
type validator struct {
	file  string
	pos   *positions
	md    toml.MetaData
	errs  Errors
	warns Errors
	files bool // check paths on the file system (Load)
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.pos.line(path), Key: path, Msg: fmt.Sprintf(format, args...)})
}

// warnf records a warning: allowed, but worth an operator's attention.
func (v *validator) warnf(path, format string, args ...any) {
	v.warns = append(v.warns, &Error{File: v.file, Line: v.pos.line(path), Key: path, Msg: "warning: " + fmt.Sprintf(format, args...)})
}

// defined reports whether the key path (as keys, without indexes) is written
// in the file, so that an explicit zero can be told from a missing key.
func (v *validator) defined(keys ...string) bool { return v.md.IsDefined(keys...) }

// finish applies defaults that depend on other fields and validates across fields.
func (c *Config) finish(v *validator) {
	if c.Node.ID == "" {
		v.errorf("node.id", "missing: every node needs an id (ns1, ns2, ...)")
	} else if !isLabel(c.Node.ID) {
		v.errorf("node.id", "%q is not a plain name: use letters, digits, '-' and '_'", c.Node.ID)
	}
	if len(c.DNS.Listen) == 0 {
		v.errorf("dns.listen", "missing: give at least one address, e.g. [\"127.0.0.1:5353\"]")
	}
	seen := map[string]int{}
	for i, a := range c.DNS.Listen {
		key := fmt.Sprintf("dns.listen[%d]", i)
		if j, dup := seen[a.String()]; dup {
			v.errorf(key, "%s is listed twice (also at dns.listen[%d])", a, j)
		}
		seen[a.String()] = i
	}
	keyNames := map[string]int{}
	for i, k := range c.DNS.TSIGKeys {
		key := fmt.Sprintf("dns.tsig_keys[%d]", i)
		name := strings.ToLower(strings.TrimSuffix(k.Name, "."))
		if !isHostName(k.Name) {
			v.errorf(key+".name", "%q is not a domain name", k.Name)
		} else if j, dup := keyNames[name]; dup {
			v.errorf(key+".name", "key %q is listed twice (also at dns.tsig_keys[%d])", k.Name, j)
		}
		keyNames[name] = i
		if !slices.Contains(tsigAlgorithms, strings.ToLower(strings.TrimSuffix(k.Algorithm, "."))) {
			v.errorf(key+".algorithm", "%q: want one of %s", k.Algorithm, strings.Join(tsigAlgorithms, ", "))
		}
		if b, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || len(b) == 0 {
			v.errorf(key+".secret", "not a base64 secret")
		}
	}
	if c.DNS.RRLRate < 0 || c.DNS.RRLRate > 1_000_000 {
		v.errorf("dns.rrl_rate", "%d is out of range 0..1000000", c.DNS.RRLRate)
	}
	if c.DNS.RRLSlip < 0 || c.DNS.RRLSlip > 100 {
		v.errorf("dns.rrl_slip", "%d is out of range 0..100", c.DNS.RRLSlip)
	}
	for i, a := range c.DNS.Notify {
		if a.Port() == 0 {
			v.errorf(fmt.Sprintf("dns.notify[%d]", i), "%s: give the secondary's port (53 for most)", a)
		}
	}
	if c.DNS.SocketsPerAddress < 0 || c.DNS.SocketsPerAddress > 256 {
		v.errorf("dns.sockets_per_address", "%d is out of range 0..256", c.DNS.SocketsPerAddress)
	}
	if c.DNS.SocketsPerAddress == 0 {
		c.DNS.SocketsPerAddress = runtime.NumCPU()
	}
	if c.DNS.UDPSize < MinUDPSize || c.DNS.UDPSize > MaxUDPSize {
		v.errorf("dns.udp_size", "%d is out of range %d..%d", c.DNS.UDPSize, MinUDPSize, MaxUDPSize)
	}
	if c.DNS.TCPIdleTimeout.Duration < 100*time.Millisecond {
		v.errorf("dns.tcp_idle_timeout", "%s is too short (minimum 100ms)", c.DNS.TCPIdleTimeout.Duration)
	}
	if c.DNS.TCPMaxConnections < 1 {
		v.errorf("dns.tcp_max_connections", "%d: must be at least 1", c.DNS.TCPMaxConnections)
	}
	switch {
	case c.DNS.NSID == "-":
		c.DNS.NSID = ""
	case c.DNS.NSID == "":
		c.DNS.NSID = c.Node.ID
	case len(c.DNS.NSID) > MaxNSID:
		v.errorf("dns.nsid", "%d bytes: at most %d", len(c.DNS.NSID), MaxNSID)
	}
	if len(c.DNS.VersionBind) > MaxTXT {
		v.errorf("dns.version_bind", "%d bytes: at most %d", len(c.DNS.VersionBind), MaxTXT)
	}
	if c.Zones.Dir == "" {
		v.errorf("zones.dir", "empty")
	} else {
		if !filepath.IsAbs(c.Zones.Dir) && c.File != "" {
			c.Zones.Dir = filepath.Join(filepath.Dir(c.File), c.Zones.Dir)
		}
		if v.files {
			c.Zones.Dir = absPath(c.Zones.Dir)
			st, err := os.Stat(c.Zones.Dir)
			switch {
			case errors.Is(err, os.ErrNotExist):
				v.errorf("zones.dir", "%s: no such directory", c.Zones.Dir)
			case err != nil:
				v.errorf("zones.dir", "%v", err)
			case !st.IsDir():
				v.errorf("zones.dir", "%s: not a directory", c.Zones.Dir)
			}
		}
	}
	if d := c.Zones.ReloadInterval.Duration; d != 0 && d < time.Second {
		v.errorf("zones.reload_interval", "%s is too short (minimum 1s, or 0 for SIGHUP only)", d)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		v.errorf("log.format", "%q: want text or json", c.Log.Format)
	}
	if c.Node.StateDir != "" && !filepath.IsAbs(c.Node.StateDir) && c.File != "" {
		c.Node.StateDir = filepath.Join(filepath.Dir(c.File), c.Node.StateDir)
	}
	c.finishHTTPSection(v)
	c.finishHealth(v)
	c.finishCluster(v)
	c.finishServices(v)
}

// path resolves a file name written in the config relative to the config
// file's directory ("" stays "").
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

// absPath is p made absolute and clean (p itself when the working
// directory is unknown).
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

func isLabel(s string) bool {
	if len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
