package zones

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreOptions configures a [Store]. The zero value works: a nil Logger
// discards, a nil Registry is replaced by a private one, a nil FS is an
// empty file system and Dir "" means ".".
type StoreOptions struct {
	FS       fs.FS
	Dir      string
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Root is prepended to file paths in errors and logs: the operating
	// system path of FS's root ("/" for os.DirFS("/")), "" for none.
	Root string
	// Now is the clock for last_reload_timestamp_seconds; nil means time.Now.
	Now func() time.Time
}

// Store keeps the snapshot of the zone files of one directory.
//
// A zone file is a regular file whose name ends in ".zone" and does not
// start with "." (so editor backups such as "x.zone~", "#x.zone#" and
// ".x.zone.swp" are ignored, as are README and friends). Its origin is its
// leading $ORIGIN if it has one, else the file name without ".zone".
type Store struct {
	fsys  fs.FS
	dir   string
	root  string
	log   *slog.Logger
	now   func() time.Time
	m     storeMetrics
	cur   atomic.Pointer[Snapshot]
	ready atomic.Bool

	mu      sync.Mutex // serialises Load, SetServices, SetRouting; guards the fields below
	files   map[string]*fileState
	zs      []*Zone // the zones of the last Load
	svcs    *Services
	routing *Routing
}

// fileState is what the store remembers of one zone file.
type fileState struct {
	hash   [sha256.Size]byte
	zone   *Zone // last good version, nil if never good
	err    error // error of the current content, nil if good
	loaded bool  // has loaded successfully at least once
}

type storeMetrics struct {
	reloads    *prometheus.CounterVec
	loadErrors *prometheus.GaugeVec
	serial     *prometheus.GaugeVec
	zones      prometheus.Gauge
	lastReload prometheus.Gauge
}

// NewStore returns a store with an empty snapshot; call [Store.Load].
func NewStore(o StoreOptions) *Store {
	s := &Store{fsys: o.FS, dir: o.Dir, root: o.Root, log: o.Logger, now: o.Now, files: make(map[string]*fileState)}
	if s.fsys == nil {
		s.fsys = emptyFS{}
	}
	if s.dir == "" {
		s.dir = "."
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	const ns, sub = "geodnsd", "zones"
	s.m = storeMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "reloads_total",
			Help: "Reloads of the zone directory, by result (error when any file failed).",
		}, []string{"result"}),
		loadErrors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "load_errors",
			Help: "1 while the latest version of a zone file fails to load, else 0.",
		}, []string{"file"}),
		serial: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "serial",
			Help: "SOA serial of each zone being served.",
		}, []string{"zone"}),
		zones: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "zones",
			Help: "Number of zones being served.",
		}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "last_reload_timestamp_seconds",
			Help: "Unix time of the end of the last reload, whatever its result.",
		}),
	}
	s.m.reloads.WithLabelValues("ok")
	s.m.reloads.WithLabelValues("error")
	reg.MustRegister(s.m.reloads, s.m.loadErrors, s.m.serial, s.m.zones, s.m.lastReload)
	s.cur.Store(NewSnapshot())
	return s
}

type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// isZoneFile reports whether a directory entry name is a zone file.
func isZoneFile(name string) bool {
	return strings.HasSuffix(name, ".zone") && len(name) > len(".zone") &&
		!strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "#")
}

// Load (re)loads the directory. Files whose content is unchanged (same
// SHA-256) are not parsed again. A file that fails keeps its last good zone
// (if any) in the snapshot; a removed file removes its zone. When two files
// give the same origin, the first by name wins and the other is an error.
// The new snapshot is swapped in atomically, and only when something
// changed, so its Version only moves when the data does. Load returns every
// error joined, each "file:line: message"; it also logs them, as the owner
// of the loading loop.
func (s *Store) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.m.lastReload.Set(float64(s.now().UnixNano()) / 1e9) }()

	entries, err := fs.ReadDir(s.fsys, s.dir)
	if err != nil {
		err = fmt.Errorf("load zones: %w", err)
		s.m.reloads.WithLabelValues("error").Inc()
		s.log.Error("zone directory unreadable", "dir", s.dir, "error", err)
		return err
	}

	changed := false
	seen := make(map[string]bool, len(entries))
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !isZoneFile(name) || !e.Type().IsRegular() {
			continue
		}
		seen[name] = true
		if s.loadFile(name) {
			changed = true
		}
	}
	for name, st := range s.files {
		if !seen[name] {
			delete(s.files, name)
			s.m.loadErrors.DeleteLabelValues(name)
			changed = true
			if st.zone != nil {
				s.log.Info("zone removed", "zone", st.zone.Origin(), "file", name)
			}
		}
	}

	// Assemble the zones: one per file, first file by name wins an origin.
	names := make([]string, 0, len(s.files))
	for name := range s.files {
		names = append(names, name)
	}
	slices.Sort(names)
	byOrigin := make(map[string]string, len(names))
	zs := make([]*Zone, 0, len(names))
	ready := true
	for _, name := range names {
		st := s.files[name]
		ready = ready && st.loaded
		ferr := st.err
		if z := st.zone; z != nil {
			if other, dup := byOrigin[z.Origin()]; dup {
				ferr = errors.Join(ferr, fmt.Errorf("%s:1: zone %s already loaded from %s", s.filePath(name), z.Origin(), other))
				ready = false
			} else {
				byOrigin[z.Origin()] = name
				zs = append(zs, z)
			}
		}
		if ferr != nil {
			errs = append(errs, ferr)
			s.m.loadErrors.WithLabelValues(name).Set(1)
		} else {
			s.m.loadErrors.WithLabelValues(name).Set(0)
		}
	}
	s.ready.Store(ready)

	if changed {
		s.zs = zs
		s.publish()
		if err := CheckServices(s.svcs, zs...); err != nil {
			errs = append(errs, err)
			for _, e := range unjoin(err) {
				s.log.Error("service conflicts with zone data", "error", e)
			}
		}
	}
	err = errors.Join(errs...)
	if err != nil {
		s.m.reloads.WithLabelValues("error").Inc()
	} else {
		s.m.reloads.WithLabelValues("ok").Inc()
	}
	return err
}

// filePath names a file as errors and logs show it.
func (s *Store) filePath(name string) string { return s.root + path.Join(s.dir, name) }

// loadFile reads and, when its content changed, parses one file. It
// reports whether the zone served for the file changed.
func (s *Store) loadFile(name string) bool {
	file := s.filePath(name)
	st := s.files[name]
	if st == nil {
		st = &fileState{}
		s.files[name] = st
	}
	data, err := fs.ReadFile(s.fsys, path.Join(s.dir, name))
	if err != nil {
		st.err = fmt.Errorf("%s: %w", file, err)
		st.hash = [sha256.Size]byte{}
		s.log.Error("zone file unreadable", "file", file, "error", err)
		return false
	}
	sum := sha256.Sum256(data)
	if sum == st.hash && (st.zone != nil || st.err != nil) {
		return false
	}
	st.hash = sum
	z, err := parse(data, "", OriginFromFileName(name), file)
	if err != nil {
		st.err = err
		keep := ""
		if st.zone != nil {
			keep = st.zone.Origin()
		}
		for _, e := range unjoin(err) {
			s.log.Error("zone load failed", "file", file, "error", e, "keeping", keep)
		}
		return false
	}
	for _, w := range z.Warnings() {
		s.log.Warn("zone load warning", "zone", z.Origin(), "warning", w)
	}
	from := uint32(0)
	if st.zone != nil {
		from = st.zone.SOA().Serial
	}
	st.zone, st.err, st.loaded = z, nil, true
	s.log.Info("zone loaded", "zone", z.Origin(), "serial", z.SOA().Serial, "from", from,
		"records", z.Records(), "file", file)
	return true
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Snapshot returns the current snapshot; never nil.
func (s *Store) Snapshot() *Snapshot { return s.cur.Load() }

// Ready reports whether every zone file currently in the directory has
// loaded successfully at least once (false before the first Load, and while
// two files claim the same origin).
func (s *Store) Ready() bool { return s.ready.Load() }

// publish builds and swaps in the snapshot of the current zones, services
// and routing view. s.mu must be held.
func (s *Store) publish() {
	snap := newSnapshot(s.zs, s.svcs, s.routing)
	s.cur.Store(snap)
	s.m.serial.Reset()
	for _, z := range snap.Zones() {
		s.m.serial.WithLabelValues(z.Origin()).Set(float64(z.SOA().Serial))
	}
	s.m.zones.Set(float64(len(snap.Zones())))
}

// SetServices installs the services (nil: none) and swaps in a new
// snapshot. The services are installed even when they conflict with the
// zone data; the conflicts are returned (see [CheckServices]): the names
// outside every zone or below a delegation are not served, and at a name
// that the zone file also defines, the service's A, AAAA and CNAME
// answers take precedence. The node's configuration check refuses such a
// configuration before it gets here; a later zone reload that creates a
// conflict is reported by [Store.Load].
func (s *Store) SetServices(svcs *Services) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.svcs = svcs
	s.publish()
	return CheckServices(svcs, s.zs...)
}

// SetRouting swaps in a new routing view (one atomic swap of the
// snapshot; queries in flight finish with the old one). r must not be
// modified afterwards. Without a routing view, service names are SERVFAIL.
func (s *Store) SetRouting(r *Routing) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routing = r
	if s.svcs.Len() > 0 {
		s.publish()
	}
}
