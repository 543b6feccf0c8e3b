package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/geodnsd/geodnsd/failover"
)

// ErrNoQuorum is returned by a write when no leader could be reached, or
// the entry could not be committed, within the bounded wait
// (Options.WriteTimeout or the context's deadline). The write may still
// have been applied if the leader committed it after the wait ended.
var ErrNoQuorum = errors.New("cluster: no quorum")

// View is what readers see of the cluster: the state as of one applied
// log index and the node's view of leadership. A View and its State are
// never mutated after publication.
type View struct {
	// Index is the raft index of the last entry applied to State (0 before
	// the first).
	Index uint64
	// State is a clone, read-only. Before the log's first spec entry is
	// applied it is the initial state of Options.Spec (not replicated yet).
	State *failover.State
	// Leader is the leader's node id, "" when none is known.
	Leader string
	// IsLeader is true on the leader.
	IsLeader bool
	// HasQuorum is true when this node is the leader (raft steps a leader
	// down after LeaderLeaseTimeout without a quorum's contact) or heard
	// from a known leader within ContactTimeout. When false, State is the
	// last committed state this node knows, and writes fail with
	// ErrNoQuorum.
	HasQuorum bool
	// Halted is why the state machine stopped applying (an entry it cannot
	// apply), or "". A halted node keeps State as of Index and refuses
	// writes with ErrHalted.
	Halted string
}

// Applied is the result of a committed write.
type Applied struct {
	// Index is the raft index of the entry; WaitApplied(ctx, Index) on any
	// node waits for it there.
	Index uint64
	// Epoch is, for a command, the highest service epoch it produced, or
	// the named service's epoch when it moved nothing (0 for a site-wide
	// command that moved nothing).
	Epoch uint64
}

// Cluster is one member of the raft cluster: the FSM around the failover
// state, the leader loop, the beat loop and the write path.
type Cluster struct {
	o       Options
	log     logger
	met     *metrics
	ros     roster
	raft    *raft.Raft
	fsm     *fsm
	trans   raft.Transport
	logs    raft.LogStore
	mux     *mux
	closers []io.Closer

	fwdSrv    *http.Server
	fwdClient *http.Client
	lastRTT   atomic.Int64 // ns, see rtt

	pubMu     sync.Mutex
	view      atomic.Pointer[View]
	changed   chan struct{}
	placehold *failover.State // View.State before the first spec entry
	lastState *failover.State
	lastIndex uint64
	halted    error

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	kick     chan struct{}
	leaderMu sync.Mutex
	stopLead context.CancelFunc // the running leader loop's, or nil

	specMu     sync.Mutex // one bootstrap spec proposal at a time
	skew       skewTracker
	stepping   atomic.Bool // the leader is handing over: it stamps nothing
	membersSet chan struct{}

	shutdownOnce sync.Once
	shutdownErr  error
}

// logger is the injected slog logger's subset we use.
type logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// New starts this node's cluster member: it opens (or creates) the state
// directory, checks its identity, bootstraps raft from Members on first
// start only, and starts raft, the transport, the leader and beat loops.
// It returns once raft runs; a leader is elected in the background.
//
// Errors: bad options, a state directory made for another node or
// cluster, an unreadable TLS file, a port in use, a state directory in use
// by another process.
func New(o Options) (*Cluster, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Cluster{o: o, log: o.Logger, changed: make(chan struct{}), kick: make(chan struct{}, 1), membersSet: make(chan struct{}, 1)}
	c.ros.set(o.Members)
	c.skew.beats = map[string]beatClock{}
	if c.met, err = newMetrics(o.Registry, func() float64 { return float64(c.View().State.FreshNodes()) }); err != nil {
		return nil, fmt.Errorf("cluster metrics: %w", err)
	}
	if c.placehold, err = failover.New(o.Spec, time.Time{}); err != nil {
		return nil, fmt.Errorf("cluster: spec: %w", err)
	}
	c.view.Store(&View{State: c.placehold})
	c.ctx, c.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			c.cancel()
			if c.mux != nil {
				c.mux.close()
			}
			for _, cl := range c.closers {
				cl.Close()
			}
		}
	}()

	hlog := newHCLog(o.Logger)
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(o.ID)
	conf.HeartbeatTimeout = o.HeartbeatTimeout
	conf.ElectionTimeout = o.ElectionTimeout
	conf.LeaderLeaseTimeout = o.LeaderLeaseTimeout
	conf.CommitTimeout = o.CommitTimeout
	conf.SnapshotThreshold = o.SnapshotThreshold
	conf.SnapshotInterval = o.SnapshotInterval
	conf.TrailingLogs = o.TrailingLogs
	conf.MaxAppendEntries = 128
	conf.BatchApplyCh = true
	conf.Logger = hlog
	notify := make(chan bool, 1)
	conf.NotifyCh = notify

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
	)
	if o.StateDir == "" {
		mem := raft.NewInmemStore()
		logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(o.StateDir, "raft.db"),
			BoltOptions: &bbolt.Options{Timeout: time.Second},
		})
		if err != nil {
			return nil, fmt.Errorf("state dir %s: raft.db: %w (is another geodnsd using it?)", o.StateDir, err)
		}
		c.closers = append(c.closers, bolt)
		logs, stable = bolt, bolt
		if snaps, err = raft.NewFileSnapshotStoreWithLogger(o.StateDir, 2, hlog); err != nil {
			return nil, fmt.Errorf("state dir %s: snapshots: %w", o.StateDir, err)
		}
	}
	c.logs = logs
	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", o.StateDir, err)
	}
	fresh := !hasState
	if o.StateDir != "" {
		if fresh, err = checkIdentity(o.StateDir, o.ID, o.ClusterID, o.Members, hasState); err != nil {
			return nil, err
		}
		cid := o.ClusterID
		if cid == "" {
			cid = derivedClusterID(o.Members)
			if id, err := readIdentity(o.StateDir); err == nil {
				cid = id.Cluster // a cluster keeps the id it was born with
			}
		}
		if err := writeIdentity(o.StateDir, o.ID, cid, o.Members); err != nil {
			return nil, fmt.Errorf("state dir %s: %w", o.StateDir, err)
		}
	}

	if err := c.startTransport(); err != nil {
		return nil, err
	}
	c.fsm = &fsm{publish: c.publishState, onHalt: c.onHalt, onEvent: c.onRejected}
	if fresh && o.Join {
		c.log.Info("cluster join: waiting for the leader to add this node", "node", o.ID)
	}
	if fresh && !o.Join {
		var cfg raft.Configuration
		for _, m := range o.Members {
			cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: suffrage(m.Voter), ID: raft.ServerID(m.ID), Address: c.addrOf(m)})
		}
		if err := raft.BootstrapCluster(conf, logs, stable, snaps, c.trans, cfg); err != nil {
			return nil, fmt.Errorf("cluster bootstrap: %w", err)
		}
		c.log.Info("cluster bootstrapped", "members", memberIDs(o.Members))
	}
	if c.raft, err = raft.NewRaft(conf, c.fsm, logs, stable, snaps, c.trans); err != nil {
		return nil, fmt.Errorf("cluster: raft: %w", err)
	}
	ok = true
	c.wg.Add(2)
	go c.monitor(notify)
	go c.beatLoop()
	return c, nil
}

// startTransport builds the raft transport: raft's in-memory transport
// for a one-node cluster without TLS, else the mutual-TLS mux on the
// listener, with the forwarding server on the same port.
func (c *Cluster) startTransport() error {
	o := c.o
	if o.TLS == nil {
		if len(o.Members) > 1 {
			return errors.New("cluster: several members need TLS (ca, cert, key)")
		}
		if o.Listener != nil {
			return errors.New("cluster: a listener needs TLS")
		}
		_, tr := raft.NewInmemTransport(raft.ServerAddress(o.ID))
		c.trans = tr
		c.closers = append(c.closers, tr)
		return nil
	}
	ln := o.Listener
	if ln == nil {
		addr := o.Listen
		if !addr.IsValid() {
			m, _ := c.ros.byID(o.ID)
			addr = m.Raft
		}
		var err error
		if ln, err = net.Listen("tcp", addr.String()); err != nil {
			return fmt.Errorf("cluster listen: %w", err)
		}
	}
	c.mux = newMux(ln, &c.ros, func(msg string, args ...any) { c.log.Warn(msg, args...) })
	var err error
	c.mux.server, c.mux.client, err = tlsConfigs(*o.TLS, o.ID, &c.ros, c.mux.isBlocked)
	if err != nil {
		ln.Close()
		return err
	}
	c.mux.wg.Add(1)
	go c.mux.serve()
	sl := &streamLayer{chanListener: chanListener{ch: c.mux.raftConns, addr: ln.Addr(), done: make(chan struct{})}, m: c.mux}
	// MaxRPCsInFlight 1 turns pipelined replication off: raft then sends
	// each AppendEntries and waits for its answer. In raft v1.8.0 a pipeline
	// can deadlock: when a follower answers Success=false the pipeline's
	// decoder stops reading, one more send parks on the full in-flight
	// channel while the response reader parks on the done channel, and the
	// pipeline is only closed by the loop that is stuck. That follower then
	// gets heartbeats but no log entries until the leader changes, and
	// raft.Shutdown waits forever (TestClockSkewLeaderStepsDown's shutdown
	// hung so under load; grafana/pyroscope#5518 turned pipelining off for
	// the same trace). Our log carries a few entries a second.
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 3, Timeout: 10 * time.Second, Logger: newHCLog(o.Logger),
		MaxRPCsInFlight: 1,
	})
	c.startForwarding(&chanListener{ch: c.mux.fwdConns, addr: ln.Addr(), done: make(chan struct{})})
	return nil
}

// addrOf is the raft address of m on this transport.
func (c *Cluster) addrOf(m Member) raft.ServerAddress {
	if c.mux == nil {
		return raft.ServerAddress(m.ID) // in-memory transport
	}
	return raft.ServerAddress(m.Raft.String())
}

func suffrage(voter bool) raft.ServerSuffrage {
	if voter {
		return raft.Voter
	}
	return raft.Nonvoter
}

// wait waits for a raft future, or for ctx: raft answers a future queued
// just before it shuts down never, so no loop may wait on one without ctx.
func wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ID is this node's id.
func (c *Cluster) ID() string { return c.o.ID }

// Addr is the address the cluster listens on (nil for a one-node cluster
// on the in-memory transport).
func (c *Cluster) Addr() net.Addr {
	if c.mux == nil {
		return nil
	}
	return c.mux.ln.Addr()
}

// View returns the latest published view; never nil.
func (c *Cluster) View() *View { return c.view.Load() }

// Changed returns a channel that is closed at the next publication of a
// View (an applied entry, a change of leader or quorum). Take it before
// reading View to miss nothing:
//
//	ch := c.Changed(); v := c.View(); ...; <-ch
func (c *Cluster) Changed() <-chan struct{} {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	return c.changed
}

// publishState is the FSM's hook after each applied entry or batch.
func (c *Cluster) publishState(st *failover.State, index uint64, halted error) {
	var clone *failover.State
	if st != nil {
		clone = st.Clone()
	}
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.lastState, c.lastIndex, c.halted = clone, index, halted
	c.met.applied.Set(float64(index))
	c.publishLocked(*c.view.Load())
}

// publishLocked publishes v with the latest state; pubMu is held.
func (c *Cluster) publishLocked(v View) {
	v.State, v.Index = c.lastState, c.lastIndex
	if v.State == nil {
		v.State = c.placehold
	}
	v.Halted = ""
	if c.halted != nil {
		v.Halted = c.halted.Error()
	}
	c.view.Store(&v)
	close(c.changed)
	c.changed = make(chan struct{})
}

// onHalt is the FSM's hook when it meets an entry it cannot apply.
func (c *Cluster) onHalt(err error, index uint64) {
	c.met.halted.Set(1)
	c.log.Error("cluster state machine halted: a log entry cannot be applied; this node keeps serving its last state and applies nothing more until it runs a build that understands the entry",
		"index", index, "err", err)
	c.poke()
}

func (c *Cluster) onRejected(kind string, err error) {
	c.met.rejected.WithLabelValues(kind).Inc()
	c.log.Debug("log event rejected", "kind", kind, "err", err)
}

// poke wakes the leader loop (coalesced).
func (c *Cluster) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// monitor follows leadership: it starts and stops the leader loop,
// republishes the view when leader or quorum change, and updates metrics.
func (c *Cluster) monitor(notify <-chan bool) {
	defer c.wg.Done()
	obs := make(chan raft.Observation, 16)
	ob := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	c.raft.RegisterObserver(ob)
	defer c.raft.DeregisterObserver(ob)
	period := min(c.o.ContactTimeout/4, 250*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		c.refresh()
		select {
		case <-c.ctx.Done():
			c.stopLeaderLoop()
			return
		case <-notify:
		case <-obs:
		case <-t.C:
		}
	}
}

// refresh recomputes leadership and quorum, starts or stops the leader
// loop, and republishes the view if they changed.
func (c *Cluster) refresh() {
	_, lid := c.raft.LeaderWithID()
	isLeader := c.raft.State() == raft.Leader
	since := time.Since(c.raft.LastContact())
	if isLeader {
		since = 0
	}
	hasQ := isLeader || (lid != "" && since <= c.o.ContactTimeout)
	c.setLeading(isLeader)

	c.met.isLeader.Set(b2f(isLeader))
	c.met.hasQuorum.Set(b2f(hasQ))
	c.met.term.Set(float64(c.raft.CurrentTerm()))
	if lid != "" && !isLeader {
		c.met.lastContact.Set(since.Seconds())
	} else {
		c.met.lastContact.Set(0)
	}

	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	v := *c.view.Load()
	if v.Leader == string(lid) && v.IsLeader == isLeader && v.HasQuorum == hasQ {
		return
	}
	if v.HasQuorum != hasQ {
		from, to := quorumWord(v.HasQuorum), quorumWord(hasQ)
		if hasQ {
			c.log.Info("cluster quorum", "from", from, "to", to, "leader", string(lid), "reason", "leader reachable")
		} else {
			c.log.Warn("cluster quorum", "from", from, "to", to, "reason", fmt.Sprintf("no leader heard from within %s: serving the last committed state, refusing writes", c.o.ContactTimeout))
		}
	}
	if v.Leader != string(lid) {
		c.log.Info("cluster leader", "from", v.Leader, "to", string(lid), "reason", "raft election")
	}
	v.Leader, v.IsLeader, v.HasQuorum = string(lid), isLeader, hasQ
	c.publishLocked(v)
}

func quorumWord(b bool) string {
	if b {
		return "quorum"
	}
	return "no_quorum"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// setLeading starts the leader loop when this node became leader and
// stops it when it no longer is.
func (c *Cluster) setLeading(leading bool) {
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	switch {
	case leading && c.stopLead == nil && c.ctx.Err() == nil:
		ctx, cancel := context.WithCancel(c.ctx)
		c.stopLead = cancel
		c.skew.reset()
		c.stepping.Store(false)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.leaderLoop(ctx)
		}()
	case !leading && c.stopLead != nil:
		c.stopLead()
		c.stopLead = nil
		c.stepping.Store(false)
		c.skew.reset()
		c.met.clockOffset.Set(0)
	}
}

func (c *Cluster) stopLeaderLoop() {
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	if c.stopLead != nil {
		c.stopLead()
		c.stopLead = nil
	}
}

// WaitApplied waits until this node has applied index (ctx bounds the
// wait). It returns ErrHalted if the node halted below index.
func (c *Cluster) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := c.Changed()
		v := c.View()
		if v.Index >= index {
			return nil
		}
		if v.Halted != "" {
			return fmt.Errorf("wait for index %d: %w (at %d): %s", index, ErrHalted, v.Index, v.Halted)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", index, v.Index, ctx.Err())
		case <-ch:
		}
	}
}

// Shutdown stops the loops, raft, the transport and the stores. It is
// safe to call more than once; ctx bounds the wait.
func (c *Cluster) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		c.shutdownOnce.Do(func() {
			// Stop the loops (every wait of theirs on raft ends with
			// c.ctx), then raft.
			c.cancel()
			c.wg.Wait()
			if c.mux != nil {
				c.mux.abort() // raft's shutdown waits for its dials
			}
			err := c.raft.Shutdown().Error()
			if c.fwdSrv != nil {
				c.fwdSrv.Close()
				c.fwdClient.CloseIdleConnections()
			}
			if c.mux != nil {
				c.mux.close()
			}
			for _, cl := range c.closers {
				if e := cl.Close(); e != nil && err == nil {
					err = e
				}
			}
			c.shutdownErr = err
		})
		close(done)
	}()
	select {
	case <-done:
		return c.shutdownErr
	case <-ctx.Done():
		return fmt.Errorf("cluster shutdown: %w", ctx.Err())
	}
}
