// Command geodnsd is the GeoDNS failover nameserver. This file is wiring
// only: flags, configuration, building the components, signals and the
// ordered shutdown.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/deploy"
	"github.com/geodnsd/geodnsd/dnsserver"
	"github.com/geodnsd/geodnsd/health"
	"github.com/geodnsd/geodnsd/web"
	"github.com/geodnsd/geodnsd/zones"
)

// Exit codes scripts can rely on.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure (cannot bind, ...)
	exitConfig = 2 // bad flags, configuration or zone data
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run is geodnsd's main; hup delivers reload requests (nil: SIGHUP).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, hup <-chan struct{}) int {
	fl := flag.NewFlagSet("geodnsd", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "/etc/geodnsd/geodnsd.toml", "configuration `file`")
	demo := fl.Bool("demo", false, "run the embedded demo configuration (example.com on 127.0.0.1:5353)")
	check := fl.Bool("check-config", false, "validate the configuration, every zone and every check, then exit (0 ok, 2 errors)")
	if err := fl.Parse(args); err != nil {
		return exitConfig
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "geodnsd: unexpected argument %q\n", fl.Arg(0))
		return exitConfig
	}

	cfg, zfs, err := loadConfig(*configPath, *demo)
	if err != nil {
		fmt.Fprintf(stderr, "geodnsd: %v\n", err)
		return exitConfig
	}
	checks, err := health.Compile(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "geodnsd: %s: %v\n", cfg.File, err)
		return exitConfig
	}
	log := newLogger(stderr, cfg.Log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store := zones.NewStore(zones.StoreOptions{FS: zfs.fsys, Dir: zfs.dir, Root: zfs.root, Logger: log, Registry: reg})
	zerr := store.Load()
	// -check-config builds every component start-up builds (nothing is
	// bound or started), so that it refuses exactly what start-up refuses.
	prober, err := health.New(health.Options{Logger: log, Registry: reg})
	if err == nil {
		err = prober.Update(checks)
	}
	if err != nil {
		fmt.Fprintf(stderr, "geodnsd: health checks: %v\n", err)
		return exitConfig
	}
	srv, err := dnsserver.New(dnsOptions(cfg, store, log, reg))
	if err != nil {
		fmt.Fprintf(stderr, "geodnsd: %v\n", err)
		return exitConfig
	}
	if *check {
		return checkOnly(stdout, stderr, cfg, store, zerr, len(checks))
	}
	if zerr != nil {
		// Serve what loaded; readiness says what did not.
		log.Error("zones not all loaded", "err", zerr)
	}
	if err := srv.Start(); err != nil {
		log.Error("dns listen failed", "err", err)
		return exitFail
	}

	var shuttingDown atomic.Bool
	ready := func() error {
		if shuttingDown.Load() {
			return errors.New("shutting down")
		}
		if !store.Ready() {
			return errors.New("not every zone has loaded")
		}
		return nil
	}
	var hsrv *web.Server
	if cfg.HTTP.Listen.IsValid() {
		hsrv, err = web.Listen(cfg.HTTP.Listen.String(), web.Options{Registry: reg, Ready: ready, Logger: log, Pprof: cfg.HTTP.Pprof})
		if err != nil {
			log.Error("http listen failed", "err", err)
			shutdownDNS(srv, log)
			return exitFail
		}
	}
	probeCtx, stopProbes := context.WithCancel(context.Background())
	probesDone := make(chan error, 1)
	go func() { probesDone <- prober.Run(probeCtx) }()
	log.Info("geodnsd started", "node", cfg.Node.ID, "dns", cfg.DNS.Listen, "http", cfg.HTTP.Listen,
		"zones", len(store.Snapshot().Zones()), "checks", len(checks))

	r := &reloader{file: *configPath, demo: *demo, cfg: cfg, store: store, prober: prober, log: log}
	r.loop(ctx, hup)

	// Ordered shutdown: not ready → stop DNS (finish in-flight) → stop
	// probes → stop HTTP (last, so that metrics stay readable meanwhile).
	log.Info("shutting down")
	shuttingDown.Store(true)
	code := exitOK
	if err := shutdownDNS(srv, log); err != nil {
		code = exitFail
	}
	stopProbes()
	if err := <-probesDone; err != nil {
		log.Error("health checks stopped", "err", err)
		code = exitFail
	}
	if hsrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := hsrv.Shutdown(sctx); err != nil {
			log.Error("http shutdown", "err", err)
			code = exitFail
		}
		cancel()
	}
	log.Info("stopped")
	return code
}

// checkOnly reports the outcome of -check-config.
func checkOnly(stdout, stderr io.Writer, cfg *config.Config, store *zones.Store, zerr error, checks int) int {
	if zerr != nil {
		fmt.Fprintf(stderr, "%v\n", zerr)
		return exitConfig
	}
	snap := store.Snapshot()
	for _, z := range snap.Zones() {
		fmt.Fprintf(stdout, "zone %s serial %d ok (%s)\n", z.Origin(), z.SOA().Serial, z.File())
	}
	fmt.Fprintf(stdout, "config %s ok: %d zones, %d sites, %d checks\n", cfg.File, len(snap.Zones()), len(cfg.Sites), checks)
	return exitOK
}

// reloader owns the reload loop: SIGHUP reloads the configuration's health
// checks and every zone; the zones.reload_interval tick reloads zones.
type reloader struct {
	file   string
	demo   bool
	cfg    *config.Config // the last good configuration
	store  *zones.Store
	prober *health.Scheduler
	log    *slog.Logger
}

func (r *reloader) loop(ctx context.Context, hup <-chan struct{}) {
	if hup == nil {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGHUP)
		defer signal.Stop(c)
		relay := make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-c:
					select {
					case relay <- struct{}{}:
					default:
					}
				case <-ctx.Done():
					return
				}
			}
		}()
		hup = relay
	}
	var tick <-chan time.Time
	if d := r.cfg.Zones.ReloadInterval.Duration; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.log.Info("reloading", "cause", "SIGHUP")
			r.reloadConfig()
			if err := r.store.Load(); err != nil {
				r.log.Error("zone reload kept the last good version of some zones", "err", err)
			}
		case <-tick:
			if err := r.store.Load(); err != nil {
				r.log.Debug("zone reload kept the last good version of some zones", "err", err)
			}
		}
	}
}

// reloadConfig reads the configuration again and applies what can change
// while serving: the health checks. A bad file keeps the last good
// configuration; changes that need a restart are named in the log.
func (r *reloader) reloadConfig() {
	if r.demo {
		return
	}
	cfg, _, err := loadConfig(r.file, false)
	if err != nil {
		r.log.Error("config reload failed; keeping the last good configuration", "err", err)
		return
	}
	checks, err := health.Compile(cfg)
	if err == nil {
		err = r.prober.Update(checks)
	}
	if err != nil {
		r.log.Error("config reload failed; keeping the last good configuration", "err", err)
		return
	}
	for _, k := range restartKeys(r.cfg, cfg) {
		r.log.Warn("config change needs a restart to take effect", "key", k)
	}
	r.cfg = cfg
	r.log.Info("config reloaded", "file", r.file, "checks", len(checks))
}

// restartKeys names the sections that differ between old and new and are
// only read at start.
func restartKeys(old, cur *config.Config) []string {
	var keys []string
	for _, c := range []struct {
		key  string
		a, b any
	}{
		{"node", old.Node, cur.Node},
		{"dns", old.DNS, cur.DNS},
		{"zones", old.Zones, cur.Zones},
		{"http", old.HTTP, cur.HTTP},
		{"log", old.Log, cur.Log},
	} {
		if !reflect.DeepEqual(c.a, c.b) {
			keys = append(keys, c.key)
		}
	}
	return keys
}

func shutdownDNS(srv *dnsserver.Server, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		log.Error("dns shutdown", "err", err)
	}
	return err
}

// zoneFS says where zone files are read from.
type zoneFS struct {
	fsys fs.FS
	dir  string
	root string // OS path of fsys's root, for file names in errors
}

// loadConfig reads the configuration file, or the embedded demo.
func loadConfig(file string, demo bool) (*config.Config, zoneFS, error) {
	if demo {
		ex := deploy.Examples()
		src, err := fs.ReadFile(ex, deploy.DemoConfig)
		if err != nil {
			return nil, zoneFS{}, err
		}
		cfg, err := config.Parse(src, deploy.DemoConfig)
		if err != nil {
			return nil, zoneFS{}, err
		}
		return cfg, zoneFS{fsys: ex, dir: path.Clean(cfg.Zones.Dir)}, nil
	}
	cfg, err := config.Load(file)
	if err != nil {
		return nil, zoneFS{}, err
	}
	dir, err := filepath.Abs(cfg.Zones.Dir)
	if err != nil {
		return nil, zoneFS{}, fmt.Errorf("zones.dir: %w", err)
	}
	return cfg, zoneFS{fsys: os.DirFS("/"), dir: strings.TrimPrefix(dir, "/"), root: "/"}, nil
}

// dnsOptions maps the configuration onto the nameserver's options.
func dnsOptions(cfg *config.Config, src dnsserver.Source, log *slog.Logger, reg *prometheus.Registry) dnsserver.Options {
	listen := make([]netip.AddrPort, len(cfg.DNS.Listen))
	for i, a := range cfg.DNS.Listen {
		listen[i] = a.AddrPort
	}
	return dnsserver.Options{
		Listen:            listen,
		SocketsPerAddress: cfg.DNS.SocketsPerAddress,
		UDPSize:           cfg.DNS.UDPSize,
		TCPIdleTimeout:    cfg.DNS.TCPIdleTimeout.Duration,
		TCPMaxConnections: cfg.DNS.TCPMaxConnections,
		NSID:              cfg.DNS.NSID,
		Identity:          cfg.Node.ID,
		VersionBind:       cfg.DNS.VersionBind,
		Source:            src,
		Logger:            log,
		Registry:          reg,
	}
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	o := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
