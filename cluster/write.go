package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/hashicorp/raft"

	"github.com/geodnsd/geodnsd/failover"
)

// writeReq is one write, local or forwarded: events, a command or a spec.
type writeReq struct {
	Events  []failover.Event
	Command *failover.Command
	Spec    *failover.Spec
	// RTT is the sender's last measured round trip to the leader, used to
	// correct its beats' clocks for network delay (0 when local).
	RTT time.Duration
}

// errNotLeader is retried: the write goes to the next leader.
var errNotLeader = errors.New("not the leader")

// Submit applies an operator command through the leader: the leader stamps
// its time, runs failover.Check on its latest state and returns the
// guard's *failover.CommandError unchanged (errors.Is(err,
// failover.ErrRefused) / failover.ErrInvalid hold also when forwarded from
// a follower); else it appends the command and returns once applied on the
// leader, with its index and the service epoch. Apply's own verdict (the
// state may have moved between Check and Apply) is returned the same way.
// Errors: ErrNoQuorum after the bounded wait, ErrHalted, ctx's error if ctx
// is cancelled. A write whose reply was lost (the leader changed) is sent
// again to the next leader, so it may be applied twice; a second command
// changes nothing and is recorded with a note.
func (c *Cluster) Submit(ctx context.Context, cmd failover.Command) (Applied, error) {
	return c.write(ctx, writeReq{Command: &cmd})
}

// Observe appends events — Observation, SyncVerdict, Beat, VerdictSet —
// through the leader, which restamps their times with its clock. The
// events of one call share one log entry. An event the failover core
// rejects (unknown node or site) is dropped and counted in
// geodnsd_cluster_rejected_events_total; Observe reports only errors of
// the write itself (ErrNoQuorum, ErrHalted, ctx).
func (c *Cluster) Observe(ctx context.Context, evs []failover.Event) error {
	if len(evs) == 0 {
		return nil
	}
	_, err := c.write(ctx, writeReq{Events: evs})
	return err
}

// Respec puts a configuration change through the log, so every node
// switches at the same index (failover.Respec at the leader's time). A
// spec equal to the one in force is not appended. Errors: the spec's
// validation error from the leader, wrapping failover.ErrInvalid (and,
// when not forwarded, the failover error itself); ErrNoQuorum; ErrHalted.
func (c *Cluster) Respec(ctx context.Context, spec failover.Spec) error {
	_, err := c.write(ctx, writeReq{Spec: &spec})
	return err
}

// write sends req to the leader (itself or forwarded) until it is applied
// or rejected, or the bounded wait ends.
func (c *Cluster) write(ctx context.Context, req writeReq) (Applied, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.o.WriteTimeout)
	defer cancel()
	backoff := 5 * time.Millisecond
	var last error = errNotLeader
	for {
		ch := c.Changed()
		if v := c.View(); v.Halted != "" {
			return Applied{}, fmt.Errorf("%w: %s", ErrHalted, v.Halted)
		}
		_, lid := c.raft.LeaderWithID()
		var (
			res Applied
			err error
		)
		switch {
		case string(lid) == c.o.ID:
			res, err = c.applyLocal(ctx, req)
		case lid != "" && c.mux != nil:
			res, err = c.forward(ctx, string(lid), req)
		default:
			err = errNotLeader
		}
		if err == nil || (!retryable(err) && ctx.Err() == nil) {
			return res, err
		}
		last = err
		select {
		case <-ctx.Done():
			if parent.Err() != nil && !errors.Is(parent.Err(), context.DeadlineExceeded) {
				return Applied{}, parent.Err()
			}
			return Applied{}, fmt.Errorf("%w: no leader committed the write within %s (last: %v)", ErrNoQuorum, c.o.WriteTimeout, last)
		case <-ch:
		case <-time.After(backoff):
			backoff = min(2*backoff, 100*time.Millisecond)
		}
	}
}

// retryable errors send the write to the next leader.
func retryable(err error) bool {
	var tr transientError
	return errors.Is(err, errNotLeader) || errors.Is(err, raft.ErrNotLeader) ||
		errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout) || errors.As(err, &tr)
}

// transientError is a forwarding failure (connection refused or lost).
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// applyLocal stamps req on the leader and appends it.
func (c *Cluster) applyLocal(ctx context.Context, req writeReq) (Applied, error) {
	if c.stepping.Load() {
		return Applied{}, errNotLeader
	}
	if v := c.View(); v.Halted != "" {
		return Applied{}, fmt.Errorf("%w: %s", ErrHalted, v.Halted)
	}
	if req.Spec == nil {
		if err := c.ensureSpec(ctx); err != nil {
			return Applied{}, err
		}
	}
	now := c.o.Now().UTC()
	var data []byte
	switch {
	case req.Command != nil:
		cmd := *req.Command
		cmd.Time = now
		if st := c.View().State; st != nil {
			if err := failover.Check(st, cmd); err != nil {
				return Applied{}, err
			}
		}
		var err error
		if data, err = encodeEvents([]failover.Event{cmd}); err != nil {
			return Applied{}, fmt.Errorf("%w: %v", failover.ErrInvalid, err)
		}
	case req.Spec != nil:
		v := c.View()
		initial := v.Index == 0 || v.State == c.placehold
		if !initial {
			ns, err := failover.Respec(v.State, *req.Spec, now)
			if err != nil {
				return Applied{}, fmt.Errorf("respec: %w: %w", failover.ErrInvalid, err)
			}
			if sameSpec(ns.Spec(), v.State.Spec()) {
				return Applied{Index: v.Index}, nil
			}
		}
		var err error
		if data, err = encodeSpec(specEntry{Time: now, Spec: *req.Spec}); err != nil {
			return Applied{}, err
		}
	default:
		evs := make([]failover.Event, len(req.Events))
		for i, e := range req.Events {
			se, err := c.stamp(e, now, req.RTT)
			if err != nil {
				return Applied{}, err
			}
			evs[i] = se
		}
		var err error
		if data, err = encodeEvents(evs); err != nil {
			return Applied{}, fmt.Errorf("%w: %v", failover.ErrInvalid, err)
		}
		defer c.poke() // decide right after observations arrive
	}
	res, idx, err := c.propose(ctx, data)
	if err != nil {
		return Applied{}, err
	}
	out := Applied{Index: idx}
	if res != nil {
		out.Epoch = res.Epoch
		if req.Events == nil && res.Err != nil {
			return out, res.Err
		}
	}
	return out, nil
}

func sameSpec(a, b failover.Spec) bool { return reflect.DeepEqual(a, b) }

func encodeSpec(se specEntry) ([]byte, error) {
	b, err := json.Marshal(se)
	if err != nil {
		return nil, err
	}
	return append([]byte{entrySpec}, b...), nil
}

// stamp sets an event's time to the leader's now; a beat also feeds the
// clock guard.
func (c *Cluster) stamp(e failover.Event, now time.Time, rtt time.Duration) (failover.Event, error) {
	switch e := e.(type) {
	case failover.Observation:
		e.Time = now
		return e, nil
	case failover.SyncVerdict:
		e.Time = now
		return e, nil
	case failover.VerdictSet:
		e.Time = now
		return e, nil
	case failover.Beat:
		e.Time = now
		if e.Node != c.o.ID && !e.Clock.IsZero() {
			c.skew.record(e.Node, e.Clock.Add(rtt/2).Sub(now), time.Now())
		}
		return e, nil
	}
	return nil, fmt.Errorf("observe: %T is not an observation, sync verdict, verdict set or beat: %w", e, failover.ErrInvalid)
}

// propose appends data on this leader and waits (bounded by ctx) until it
// is applied here.
func (c *Cluster) propose(ctx context.Context, data []byte) (*entryResult, uint64, error) {
	start := time.Now()
	timeout := time.Until(deadline(ctx, c.o.WriteTimeout))
	f := c.raft.Apply(data, timeout)
	if err := wait(ctx, f); err != nil {
		return nil, 0, err
	}
	c.met.commit.Observe(time.Since(start).Seconds())
	res, _ := f.Response().(*entryResult)
	if res != nil && errors.Is(res.Err, ErrHalted) {
		return nil, f.Index(), res.Err
	}
	return res, f.Index(), nil
}

func deadline(ctx context.Context, d time.Duration) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return time.Now().Add(d)
}
