package node

// Options of the cluster member and of the HTTP side, from the configuration,
// and the adapter that gives the HTTP side the cluster.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geodnsd/geodnsd/cluster"
	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web"
)

// members is the configured member list, or this node alone.
func members(cfg *config.Config) []cluster.Member {
	if len(cfg.Cluster.Nodes) == 0 {
		return []cluster.Member{{ID: cfg.Node.ID, Voter: true, HTTP: cfg.HTTP.Listen.String()}}
	}
	out := make([]cluster.Member, 0, len(cfg.Cluster.Nodes))
	for _, m := range cfg.Cluster.Nodes {
		out = append(out, cluster.Member{ID: m.ID, Raft: m.Raft.AddrPort, HTTP: string(m.HTTP), Voter: m.Voter})
	}
	return out
}

// clusterOptions maps the configuration onto the cluster member's options.
func clusterOptions(cfg *config.Config, spec failover.Spec, stateDir string, digest func() string,
	verdicts func() ([]failover.Observation, []failover.SyncVerdict), log *slog.Logger, reg *prometheus.Registry) cluster.Options {
	c := cfg.Cluster
	o := cluster.Options{
		ID:                 cfg.Node.ID,
		Members:            members(cfg),
		Listen:             c.Listen.AddrPort,
		StateDir:           stateDir,
		Spec:               spec,
		HeartbeatTimeout:   c.HeartbeatTimeout.Duration,
		ElectionTimeout:    c.ElectionTimeout.Duration,
		LeaderLeaseTimeout: c.LeaderLeaseTimeout.Duration,
		CommitTimeout:      c.CommitTimeout.Duration,
		SnapshotInterval:   c.SnapshotInterval.Duration,
		SnapshotThreshold:  uint64(max(c.SnapshotThreshold, 0)),
		BeatInterval:       c.BeatInterval.Duration,
		MaxClockSkew:       c.MaxClockSkew.Duration,
		WriteTimeout:       c.WriteTimeout.Duration,
		Join:               c.Join,
		Digest:             digest,
		Verdicts:           verdicts,
		Logger:             log,
		Registry:           reg,
	}
	if c.CA != "" {
		o.TLS = &cluster.TLSFiles{CA: c.CA, Cert: c.Cert, Key: c.Key}
	}
	return o
}

// stateDir returns node.state_dir, or a temporary directory (removed by
// cleanup) when it is unset, as for the demo.
func (n *Node) stateDir() (dir string, cleanup func(), err error) {
	if d := n.cur.Load().cfg.Node.StateDir; d != "" {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", nil, fmt.Errorf("node.state_dir: %w", err)
		}
		return d, func() {}, nil
	}
	d, err := os.MkdirTemp("", "geodnsd-state-")
	if err != nil {
		return "", nil, fmt.Errorf("temporary state directory: %w", err)
	}
	n.log.Warn("node.state_dir is not set: the cluster state lives in a temporary directory and is lost at exit", "dir", d)
	return d, func() { os.RemoveAll(d) }, nil
}

// setDigest stores the config digest of the configuration in force.
func (n *Node) setDigest() {
	d := configDigest(n.cur.Load())
	n.digest.Store(&d)
}

// configDigest is the config digest over the configuration and the zone files
// the node serves.
func configDigest(lc *loaded) string {
	var data [][]byte
	zfs := lc.zfs
	entries, err := fs.ReadDir(zfs.fsys, zfs.dir)
	if err == nil {
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".zone") || strings.HasPrefix(name, ".") {
				continue
			}
			if b, err := fs.ReadFile(zfs.fsys, path.Join(zfs.dir, name)); err == nil {
				data = append(data, b)
			}
		}
	}
	return lc.cfg.Digest(data...)
}

func (n *Node) digestString() string {
	if d := n.digest.Load(); d != nil {
		return *d
	}
	return ""
}

// webOptions maps the configuration onto the HTTP side's options.
func (n *Node) webOptions(cfg *config.Config) web.Options {
	limit := func(r float64) float64 {
		if r == 0 {
			return -1 // 0 in the configuration turns the limit off
		}
		return r
	}
	o := web.Options{
		Registry:    n.reg,
		Ready:       n.Ready,
		Logger:      n.log,
		Pprof:       cfg.HTTP.Pprof,
		Backend:     &backend{n: n},
		Node:        cfg.Node.ID,
		PublicRate:  limit(cfg.HTTP.StatusRate),
		PublicBurst: cfg.HTTP.StatusBurst,
		AdminRate:   limit(cfg.HTTP.AdminRate),
		AdminBurst:  cfg.HTTP.AdminBurst,
	}
	for _, t := range cfg.HTTP.Tokens {
		o.Tokens = append(o.Tokens, web.Token{Name: t.Name, SHA256: t.SHA256.String(), Role: web.Role(t.Role)})
	}
	return o
}

// backend adapts the cluster member to what the HTTP side needs.
type backend struct{ n *Node }

func (b *backend) View() *web.View {
	v := b.n.cl.View()
	cfg := b.n.cur.Load().cfg
	wv := &web.View{Index: v.Index, State: v.State, Leader: v.Leader, Quorum: v.HasQuorum && v.Halted == "", Halted: v.Halted,
		Applied: map[string]uint64{}, TTL: map[string]time.Duration{}}
	if m := b.n.peersApplied.Load(); m != nil {
		for id, i := range *m {
			wv.Applied[id] = i
		}
	}
	wv.Applied[cfg.Node.ID] = v.Index
	for name, s := range cfg.Services {
		wv.TTL[name] = s.TTL.Duration
	}
	return wv
}

func (b *backend) Changed() <-chan struct{} { return b.n.cl.Changed() }

func (b *backend) Submit(ctx context.Context, c failover.Command) (web.Applied, error) {
	a, err := b.n.cl.Submit(ctx, c)
	if err != nil {
		if errors.Is(err, cluster.ErrNoQuorum) || errors.Is(err, cluster.ErrHalted) {
			err = fmt.Errorf("%w: %w", web.ErrUnavailable, err)
		}
		return web.Applied{}, err
	}
	return web.Applied{Index: a.Index, Epoch: a.Epoch}, nil
}

func (b *backend) WaitAll(ctx context.Context, index uint64) error {
	_, err := b.n.cl.WaitAll(ctx, index)
	return err
}

// pollApplied asks the other members how far they have applied the log,
// every interval until ctx ends, for the status documents' nodes list.
func (n *Node) pollApplied(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, interval)
		m, _ := n.cl.WaitAll(actx, 0) // index 0: nobody waits; unreachable members are left out
		cancel()
		n.peersApplied.Store(&m)
	}
}
