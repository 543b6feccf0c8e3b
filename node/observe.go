package node

// The second translation: this node's health verdicts → failover events.
// health emits an Observation on every change of a check's verdict; the
// observer keeps the node's current verdict of every check (what a beat's
// verdict digest is computed from, and what a VerdictSet re-sends), and
// hands the changes to the cluster in batches.

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/health"
)

// maxBatch bounds the events of one Observe call.
const maxBatch = 512

// submitter is what the observer hands its events to (cluster.Cluster).
type submitter interface {
	Observe(ctx context.Context, events []failover.Event) error
}

// observer turns health observations into failover events.
type observer struct {
	node    string
	log     *slog.Logger
	timeout time.Duration // bound of one Observe call

	mu      sync.Mutex
	current map[health.Key]health.Observation // verdicts other than Unknown
	pending []failover.Event
	wake    chan struct{} // 1-buffered: pending has events
}

func newObserver(node string, timeout time.Duration, log *slog.Logger) *observer {
	return &observer{node: node, log: log, timeout: timeout, current: map[health.Key]health.Observation{}, wake: make(chan struct{}, 1)}
}

// onChange is health.Options.OnChange.
func (o *observer) onChange(ob health.Observation) {
	k := health.Key{Site: ob.Site, Endpoint: ob.Endpoint, Check: ob.Check}
	o.mu.Lock()
	if ob.Verdict == health.Unknown {
		// A check removed from the configuration (or never decided): its
		// vote is withdrawn by the next VerdictSet, which the verdict
		// digest mismatch triggers.
		delete(o.current, k)
	} else {
		o.current[k] = ob
		o.pending = append(o.pending, toEvent(o.node, ob))
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// toEvent translates one verdict: a sync check's (in_sync or not_in_sync)
// becomes a SyncVerdict, any other check's an Observation (Endpoint "" for a site-wide check).
func toEvent(node string, ob health.Observation) failover.Event {
	if ob.Verdict == health.InSync || ob.Verdict == health.NotInSync {
		return failover.SyncVerdict{Time: ob.Time.UTC(), Node: node, Site: ob.Site, Check: ob.Check,
			InSync: ob.Verdict == health.InSync, Reason: ob.Reason}
	}
	return failover.Observation{Time: ob.Time.UTC(), Node: node, Site: ob.Site, Endpoint: ob.Endpoint,
		Check: ob.Check, Up: ob.Verdict == health.Up, Reason: ob.Reason}
}

// Verdicts returns the node's current verdicts as failover events, in key
// order: what a VerdictSet carries and a verdict digest covers.
func (o *observer) Verdicts() ([]failover.Observation, []failover.SyncVerdict) {
	o.mu.Lock()
	keys := make([]health.Key, 0, len(o.current))
	for k := range o.current {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	var obs []failover.Observation
	var syncs []failover.SyncVerdict
	for _, k := range keys {
		switch e := toEvent(o.node, o.current[k]).(type) {
		case failover.Observation:
			obs = append(obs, e)
		case failover.SyncVerdict:
			syncs = append(syncs, e)
		}
	}
	o.mu.Unlock()
	return obs, syncs
}

// run sends pending events to sub in batches until ctx ends. A batch that
// cannot be delivered (no quorum, leader change) is dropped and logged: the
// beat's verdict digest brings the node's current verdicts back.
func (o *observer) run(ctx context.Context, sub submitter) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		for {
			o.mu.Lock()
			batch := o.pending
			if len(batch) > maxBatch {
				batch, o.pending = batch[:maxBatch:maxBatch], batch[maxBatch:]
			} else {
				o.pending = nil
			}
			o.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			cctx, cancel := context.WithTimeout(ctx, o.timeout)
			err := sub.Observe(cctx, batch)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				o.log.Warn("observations not delivered; the next beat resends the verdicts", "events", len(batch), "err", err)
			}
		}
	}
}
