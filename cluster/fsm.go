package cluster

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/geodnsd/geodnsd/failover"
)

// Log entry format (raft.Log.Data of LogCommand entries). The first byte is
// the entry type; unknown types stop the FSM (see fsm.halt).
const (
	// entryEvents: a batch of failover events, each as uvarint(length)
	// followed by failover.EncodeEvent bytes, applied in order.
	entryEvents byte = 1
	// entrySpec: a configuration change, JSON specEntry, applied with
	// failover.Respec.
	entrySpec byte = 2
)

// specEntry is the payload of an entrySpec entry.
type specEntry struct {
	Time time.Time     `json:"time"`
	Spec failover.Spec `json:"spec"`
	// Initial marks the bootstrap spec that the first leader appends; it is
	// ignored once the log holds a spec.
	Initial bool `json:"initial,omitempty"`
}

// encodeEvents encodes events as one entryEvents entry.
func encodeEvents(evs []failover.Event) ([]byte, error) {
	buf := []byte{entryEvents}
	for _, e := range evs {
		b, err := failover.EncodeEvent(e)
		if err != nil {
			return nil, err
		}
		buf = binary.AppendUvarint(buf, uint64(len(b)))
		buf = append(buf, b...)
	}
	return buf, nil
}

// decodeEvents decodes an entryEvents payload (after the type byte). Any
// undecodable event (an unknown mandatory kind, bad JSON, a bad length) is
// an error for the whole entry.
func decodeEvents(p []byte) ([]failover.Event, error) {
	var evs []failover.Event
	for len(p) > 0 {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, fmt.Errorf("event %d: bad length", len(evs))
		}
		e, err := failover.DecodeEvent(p[k : k+int(n)])
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", len(evs), err)
		}
		evs = append(evs, e)
		p = p[k+int(n):]
	}
	return evs, nil
}

// entryResult is what the FSM returns for one entry (the ApplyFuture's
// Response on the node that proposed it).
type entryResult struct {
	// Err is the first rejection (a *failover.CommandError, or an error
	// wrapping failover.ErrInvalid), or ErrHalted.
	Err error
	// Rejected counts the events of the entry that were rejected.
	Rejected int
	// Epoch is, for a command, the highest epoch its history entries carry,
	// or the named service's epoch when it moved nothing.
	Epoch uint64
}

// ErrHalted is returned by writes, and by the FSM for every entry, once
// the FSM has met an entry it cannot apply (see View.Halted).
var ErrHalted = errors.New("cluster: state machine halted")

// fsm is the raft FSM around one *failover.State. Apply, ApplyBatch,
// Snapshot and Restore are called by raft from one goroutine; readers get
// an immutable clone through publish.
type fsm struct {
	state   *failover.State
	index   uint64
	halted  error // set once; never cleared while the process lives
	publish func(st *failover.State, index uint64, halted error)
	onHalt  func(err error, index uint64)
	onEvent func(kind string, err error) // a rejected event, for metrics and logs
}

// normal reports whether an Apply error is an ordinary, deterministic
// rejection that leaves the state as the failover core says (unchanged, or
// a Tick for a refused command): invalid or refused. Anything else halts.
func normal(err error) bool {
	return errors.Is(err, failover.ErrInvalid) || errors.Is(err, failover.ErrRefused)
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	r := f.apply(l)
	f.publish(f.state, f.index, f.halted)
	return r
}

// ApplyBatch implements raft.BatchingFSM: one publish per batch.
func (f *fsm) ApplyBatch(ls []*raft.Log) []any {
	out := make([]any, len(ls))
	for i, l := range ls {
		out[i] = f.apply(l)
	}
	f.publish(f.state, f.index, f.halted)
	return out
}

// apply applies one entry. After a halt, every entry is refused (and the
// index no longer advances), so the state stays that of the last good
// entry and no snapshot can claim a later index.
func (f *fsm) apply(l *raft.Log) *entryResult {
	if f.halted != nil {
		return &entryResult{Err: f.halted}
	}
	if l.Type != raft.LogCommand {
		f.index = l.Index
		return &entryResult{}
	}
	res, fatal := f.applyData(l.Data)
	if fatal != nil {
		f.halted = fmt.Errorf("%w at log index %d: %w", ErrHalted, l.Index, fatal)
		f.onHalt(fatal, l.Index)
		return &entryResult{Err: f.halted}
	}
	f.index = l.Index
	return res
}

// applyData applies an entry's data; a non-nil second result is fatal.
func (f *fsm) applyData(d []byte) (*entryResult, error) {
	if len(d) == 0 {
		return nil, errors.New("empty entry")
	}
	res := &entryResult{}
	switch d[0] {
	case entryEvents:
		evs, err := decodeEvents(d[1:])
		if err != nil {
			return nil, err
		}
		if f.state == nil {
			err := fmt.Errorf("no spec applied yet: %w", failover.ErrInvalid)
			res.Rejected, res.Err = len(evs), err
			f.onEvent("events", err)
			break
		}
		for _, e := range evs {
			r, err := failover.Apply(f.state, e)
			if err != nil {
				if !normal(err) {
					return nil, fmt.Errorf("apply %T: %w", e, err)
				}
				res.Rejected++
				if res.Err == nil {
					res.Err = err
				}
				f.onEvent(kindName(e), err)
			}
			if c, ok := e.(failover.Command); ok {
				res.Epoch = commandEpoch(f.state, c, r)
			}
		}
	case entrySpec:
		var se specEntry
		if err := strictJSON(d[1:], &se); err != nil {
			return nil, fmt.Errorf("spec entry: %w", err)
		}
		if f.state == nil || se.Initial {
			if f.state != nil {
				break // a later leader's initial spec: the log already has one
			}
			st, err := failover.New(se.Spec, se.Time)
			if err != nil {
				res.Rejected, res.Err = 1, err
				f.onEvent("spec", err)
				break
			}
			f.state = st
			break
		}
		// Respec is pure and leaves f.state alone: any error is a
		// deterministic rejection, the same on every node.
		ns, err := failover.Respec(f.state, se.Spec, se.Time)
		if err != nil {
			res.Rejected, res.Err = 1, err
			f.onEvent("spec", err)
			break
		}
		f.state = ns
	default:
		return nil, fmt.Errorf("unknown entry type 0x%02x", d[0])
	}
	return res, nil
}

// commandEpoch is the epoch a command produced: the highest epoch among
// its history entries, else the named service's current epoch (0 for a
// site-wide command that moved nothing).
func commandEpoch(s *failover.State, c failover.Command, r failover.Result) uint64 {
	var ep uint64
	for _, e := range r.Entries {
		ep = max(ep, e.Epoch)
	}
	if ep == 0 && c.Service != "" {
		for _, a := range s.Answers() {
			if a.Service == c.Service {
				ep = max(ep, a.Epoch)
			}
		}
	}
	return ep
}

func kindName(e failover.Event) string {
	switch e.(type) {
	case failover.Observation:
		return "observation"
	case failover.SyncVerdict:
		return "sync_verdict"
	case failover.Beat:
		return "beat"
	case failover.Command:
		return "command"
	case failover.Decision:
		return "decision"
	case failover.Tick:
		return "tick"
	case failover.VerdictSet:
		return "verdict_set"
	}
	return "other"
}

// Snapshot implements raft.FSM: a clone now, encoded in Persist. A halted
// FSM refuses, so that raft never compacts the log past the entry it could
// not apply.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if f.halted != nil {
		return nil, f.halted
	}
	snap := &fsmSnapshot{index: f.index}
	if f.state != nil {
		snap.state = f.state.Clone()
	}
	return snap, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	idx, body, err := parseSnapshot(b)
	if err != nil {
		return err
	}
	var st *failover.State // an empty body: no spec applied yet
	if len(body) > 0 {
		if st, err = failover.UnmarshalSnapshot(body); err != nil {
			return fmt.Errorf("restore snapshot: %w", err)
		}
	}
	f.state, f.index = st, idx
	f.publish(f.state, f.index, f.halted)
	return nil
}

// Snapshot file: "GDNSCS1\n", the applied index as 8 bytes big-endian, then
// failover.MarshalSnapshot's bytes (nothing before the first spec entry).
const snapMagic = "GDNSCS1\n"

func parseSnapshot(b []byte) (uint64, []byte, error) {
	if len(b) < len(snapMagic)+8 || string(b[:len(snapMagic)]) != snapMagic {
		return 0, nil, errors.New("restore snapshot: not a geodnsd cluster snapshot")
	}
	b = b[len(snapMagic):]
	return binary.BigEndian.Uint64(b[:8]), b[8:], nil
}

type fsmSnapshot struct {
	state *failover.State
	index uint64
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	var b []byte
	if s.state != nil {
		var err error
		if b, err = failover.MarshalSnapshot(s.state); err != nil {
			sink.Cancel()
			return err
		}
	}
	var hdr [len(snapMagic) + 8]byte
	copy(hdr[:], snapMagic)
	binary.BigEndian.PutUint64(hdr[len(snapMagic):], s.index)
	if _, err := sink.Write(hdr[:]); err != nil {
		sink.Cancel()
		return err
	}
	if _, err := sink.Write(b); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// strictJSON decodes exactly one JSON value with no unknown fields.
func strictJSON(p []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
