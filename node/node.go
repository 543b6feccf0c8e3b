// Package node assembles one geodnsd process from its configuration: the
// zone store, the nameserver, the probers, the cluster member and the HTTP
// side; it owns reload and the ordered shutdown, the one Validate shared by
// `geodnsd -check-config` and `failoverctl validate`, and the three
// translations between the parts (config → failover.Spec, health
// observations → failover events, the replicated view → the nameserver's
// routing). cmd/geodnsd is flags and signals around it.
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/geodnsd/geodnsd/cluster"
	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/dnsserver"
	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/health"
	"github.com/geodnsd/geodnsd/web"
	"github.com/geodnsd/geodnsd/zones"
)

// ErrConfig is wrapped by every error that comes from the configuration,
// the zone data or the checks (exit code 2), as opposed to run-time failures
// such as a port already in use.
var ErrConfig = errors.New("configuration")

type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() []error {
	return []error{ErrConfig, e.err}
}

func cfgErr(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

// Options configure a Node. Source is required; the rest may be zero.
type Options struct {
	Source Source
	// Log receives the node's log (text or JSON per the config's [log]);
	// nil means os.Stderr.
	Log io.Writer
	// Registry receives every metric; nil means a new registry with the Go
	// and process collectors.
	Registry *prometheus.Registry
}

// Node is one running geodnsd process. Start binds its sockets; Run serves
// until its context ends, then shuts down in order.
type Node struct {
	opts   Options
	cur    atomic.Pointer[loaded] // the last good configuration: written by the reload loop only
	log    *slog.Logger
	reg    *prometheus.Registry
	store  *zones.Store
	prober *health.Scheduler
	checks []health.Check
	dns    *dnsserver.Server
	http   *web.Server
	obs    *observer
	specMu sync.Mutex    // serialises writes of the spec to the log
	spec   failover.Spec // the spec this node last wrote (or started with)
	svcs   *zones.Services
	cl     *cluster.Cluster
	digest atomic.Pointer[string] // the config digest beats carry
	// peersApplied is each member's applied index as last asked.
	peersApplied atomic.Pointer[map[string]uint64]

	met          nodeMetrics
	routed       chan struct{} // closed once the first routing view is in the store
	shuttingDown atomic.Bool
}

// New reads and validates the configuration and builds every component,
// binding nothing. A configuration error wraps ErrConfig.
func New(o Options) (*Node, error) {
	lc, err := load(o.Source)
	if err != nil {
		return nil, cfgErr(err)
	}
	return build(o, lc)
}

func build(o Options, lc *loaded) (*Node, error) {
	cfg := lc.cfg
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	checks, spec, svcs := c.checks, c.spec, c.svcs
	if o.Log == nil {
		o.Log = os.Stderr
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	log := newLogger(o.Log, cfg.Log).With("node", cfg.Node.ID)
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w)
	}
	n := &Node{opts: o, log: log, reg: reg, checks: checks, spec: spec, svcs: svcs, routed: make(chan struct{})}
	n.cur.Store(lc)
	if n.met, err = newNodeMetrics(reg); err != nil {
		return nil, err
	}
	n.obs = newObserver(cfg.Node.ID, cfg.Cluster.WriteTimeout.Duration, log)
	n.store = zones.NewStore(zones.StoreOptions{FS: lc.zfs.fsys, Dir: lc.zfs.dir, Root: lc.zfs.root, Logger: log, Registry: reg})
	if err := n.store.Load(); err != nil {
		// Serve what loaded; readiness says what did not.
		log.Error("zones not all loaded", "err", err)
	}
	if err := n.store.SetServices(svcs); err != nil {
		return nil, cfgErr(positioned(cfg, err))
	}
	n.setDigest()
	n.prober, err = health.New(health.Options{Logger: log, Registry: reg, OnChange: n.obs.onChange})
	if err == nil {
		err = n.prober.Update(checks)
	}
	if err != nil {
		return nil, cfgErr(fmt.Errorf("health checks: %w", err))
	}
	n.dns, err = dnsserver.New(dnsOptions(cfg, n.store, log, reg))
	if err != nil {
		return nil, cfgErr(err)
	}
	return n, nil
}

// Logger is the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Config is the configuration the node runs with (the last good one).
func (n *Node) Config() *config.Config { return n.cur.Load().cfg }

// Ready reports why the node should not be sent traffic, or nil.
func (n *Node) Ready() error {
	if n.shuttingDown.Load() {
		return errors.New("shutting down")
	}
	if !n.store.Ready() {
		return errors.New("not every zone has loaded")
	}
	select {
	case <-n.routed:
	default:
		return errors.New("no routing state yet")
	}
	return nil
}

// Run binds the node's sockets, serves until ctx ends and shuts down in
// order: not ready → stop DNS (finishing in-flight queries) → stop probes →
// stop HTTP (last, so that metrics stay readable meanwhile). hup delivers
// reload requests; nil means SIGHUP.
func (n *Node) Run(ctx context.Context, hup <-chan struct{}) (err error) {
	cfg := n.cur.Load().cfg
	stateDir, cleanup, err := n.stateDir()
	if err != nil {
		return err
	}
	defer cleanup()
	n.cl, err = cluster.New(clusterOptions(cfg, n.spec, stateDir, n.digestString, n.obs.Verdicts, n.log, n.reg))
	if err != nil {
		return err
	}
	bg, stopBG := context.WithCancel(context.Background())
	var bgDone sync.WaitGroup
	bgDone.Go(func() { publishRouting(bg, n.cl, n.store, n.routed) })
	stopCluster := func() error {
		stopBG()
		bgDone.Wait()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.cl.Shutdown(sctx); err != nil {
			return fmt.Errorf("cluster shutdown: %w", err)
		}
		return nil
	}
	// HTTP first, so that /readyz says "not ready" rather than nothing
	// while the nameserver comes up.
	if cfg.HTTP.Listen.IsValid() {
		n.http, err = web.Listen(cfg.HTTP.Listen.String(), n.webOptions(cfg))
		if err != nil {
			return errors.Join(err, stopCluster())
		}
	}
	if err := n.dns.Start(); err != nil {
		return errors.Join(fmt.Errorf("dns listen: %w", err), n.shutdownHTTP(), stopCluster())
	}
	bgDone.Go(func() { n.obs.run(bg, n.cl) })
	bgDone.Go(func() { n.respecAtStart(bg) })
	if len(cfg.Cluster.Nodes) > 1 {
		bgDone.Go(func() { n.pollApplied(bg, max(cfg.Cluster.BeatInterval.Duration, time.Second)) })
	}
	probeCtx, stopProbes := context.WithCancel(context.Background())
	probesDone := make(chan error, 1)
	go func() { probesDone <- n.prober.Run(probeCtx) }()
	n.log.Info("geodnsd started", "dns", cfg.DNS.Listen, "http", cfg.HTTP.Listen, "raft", n.cl.Addr(),
		"zones", len(n.store.Snapshot().Zones()), "checks", len(n.checks), "services", n.svcs.Len())

	n.reloadLoop(ctx, hup)

	// Ordered shutdown: not ready → stop DNS (finish in-flight) → stop
	// probes → stop raft → stop HTTP (last, so that metrics stay readable).
	n.log.Info("shutting down")
	n.shuttingDown.Store(true)
	var errs []error
	errs = append(errs, n.shutdownDNS())
	stopProbes()
	if err := <-probesDone; err != nil {
		errs = append(errs, fmt.Errorf("health checks stopped: %w", err))
	}
	errs = append(errs, stopCluster(), n.shutdownHTTP())
	n.log.Info("stopped")
	return errors.Join(errs...)
}

func (n *Node) shutdownHTTP() error {
	if n.http == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

func (n *Node) shutdownDNS() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.dns.Shutdown(ctx); err != nil {
		return fmt.Errorf("dns shutdown: %w", err)
	}
	return nil
}

// reloadLoop reloads on hup (the configuration's checks and every zone) and
// on the zones.reload_interval tick (zones only) until ctx ends.
func (n *Node) reloadLoop(ctx context.Context, hup <-chan struct{}) {
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
	if d := n.cur.Load().cfg.Zones.ReloadInterval.Duration; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			n.log.Info("reloading", "cause", "SIGHUP")
			if err := n.store.Load(); err != nil {
				n.log.Error("zone reload kept the last good version of some zones", "err", err)
			}
			n.reloadConfig(ctx)
		case <-tick:
			if err := n.store.Load(); err != nil {
				n.log.Debug("zone reload kept the last good version of some zones", "err", err)
			}
			n.setDigest()
		}
	}
}

// respecAtStart brings the replicated spec to this node's configuration once
// the cluster can take writes: the log may hold the spec of an older
// configuration (edited while the node was down). The leader writes nothing
// when the spec is unchanged. Each try is bounded by the cluster's write
// timeout; it retries until it succeeds or ctx ends.
func (n *Node) respecAtStart(ctx context.Context) {
	for {
		n.specMu.Lock() // a reload may have moved n.spec on: write the latest
		err := n.cl.Respec(ctx, n.spec)
		n.specMu.Unlock()
		switch {
		case err == nil:
			return
		case errors.Is(err, failover.ErrInvalid):
			n.log.Error("the cluster refuses this node's sites and services", "err", err)
			return
		case ctx.Err() != nil:
			return
		}
		n.log.Debug("spec not written yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// reloadConfig reads the configuration again and applies what can change
// while serving: checks, sites, services (through the log, so that every node
// switches at the same index), geo databases and cluster membership. A bad
// file keeps the last good configuration; changes that need a restart are
// named in the log.
func (n *Node) reloadConfig(ctx context.Context) {
	if n.opts.Source.Demo {
		return
	}
	fail := func(err error) {
		n.log.Error("config reload failed; keeping the last good configuration", "err", err)
		n.met.reloads.WithLabelValues("error").Inc()
		n.met.lastOK.Set(0)
	}
	lc, err := load(n.opts.Source)
	if err != nil {
		fail(err)
		return
	}
	cfg := lc.cfg
	c, err := compile(cfg)
	if err != nil {
		fail(err)
		return
	}
	checks, spec, svcs := c.checks, c.spec, c.svcs
	if err := zones.CheckServices(svcs, n.store.Snapshot().Zones()...); err != nil {
		fail(positioned(cfg, err))
		return
	}
	if err := n.prober.Update(checks); err != nil {
		fail(err)
		return
	}
	for _, w := range cfg.Warnings {
		n.log.Warn("config: " + w)
	}
	for _, k := range restartKeys(n.cur.Load().cfg, cfg) {
		n.log.Warn("config change needs a restart to take effect", "key", k)
	}
	n.specMu.Lock()
	if !reflect.DeepEqual(spec, n.spec) {
		rctx, cancel := context.WithTimeout(ctx, cfg.Cluster.WriteTimeout.Duration)
		err := n.cl.Respec(rctx, spec)
		cancel()
		if err != nil {
			// The checks already run with the new configuration; the spec
			// is tried again at the next reload. Say so loudly.
			n.log.Error("config reload: sites and services not changed (the cluster did not accept the new spec)", "err", err)
		} else {
			n.spec = spec
		}
	}
	n.specMu.Unlock()
	if err := n.cl.SetMembers(members(cfg)); err != nil {
		n.log.Error("config reload: cluster membership", "err", err)
	}
	n.store.SetServices(svcs) // conflicts were checked above
	n.cur.Store(lc)
	n.checks, n.svcs = checks, svcs
	n.setDigest()
	n.met.reloads.WithLabelValues("ok").Inc()
	n.met.lastOK.Set(1)
	n.log.Info("config reloaded", "file", cfg.File, "checks", len(checks), "services", svcs.Len())
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

// dnsOptions maps the configuration onto the nameserver's options.
func dnsOptions(cfg *config.Config, src dnsserver.Source, log *slog.Logger, reg *prometheus.Registry) dnsserver.Options {
	listen := make([]netip.AddrPort, len(cfg.DNS.Listen))
	for i, a := range cfg.DNS.Listen {
		listen[i] = a.AddrPort
	}
	var xfr []netip.Prefix
	for _, p := range cfg.DNS.TransferAllow {
		xfr = append(xfr, p.Prefix)
	}
	notify := make([]netip.AddrPort, 0, len(cfg.DNS.Notify))
	for _, a := range cfg.DNS.Notify {
		notify = append(notify, a.AddrPort)
	}
	var keys []dnsserver.TSIGKey
	for _, k := range cfg.DNS.TSIGKeys {
		keys = append(keys, dnsserver.TSIGKey{Name: k.Name, Algorithm: k.Algorithm, Secret: k.Secret})
	}
	rrl := dnsserver.RRL{Rate: uint32(cfg.DNS.RRLRate), Slip: uint32(cfg.DNS.RRLSlip)}
	for _, p := range cfg.DNS.RRLAllow {
		rrl.Allow = append(rrl.Allow, p.Prefix)
	}
	return dnsserver.Options{
		RRL:               rrl,
		TSIGKeys:          keys,
		TransferAllow:     xfr,
		Notify:            notify,
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

// nodeMetrics are the node's own metrics (subsystem config).
type nodeMetrics struct {
	reloads *prometheus.CounterVec // by result: ok, error
	lastOK  prometheus.Gauge
}

func newNodeMetrics(reg *prometheus.Registry) (nodeMetrics, error) {
	m := nodeMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "config", Name: "reloads_total",
			Help: "Configuration reloads (SIGHUP), by result: ok, or error (the last good configuration was kept)."}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "geodnsd", Subsystem: "config", Name: "last_reload_successful",
			Help: "1 when the last configuration reload (or the start) took the file, 0 when it kept the last good configuration."}),
	}
	m.lastOK.Set(1)
	for _, c := range []prometheus.Collector{m.reloads, m.lastOK} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("node metrics: %w", err)
		}
	}
	return m, nil
}
