package failover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Kind is an event's type byte on the wire. Kinds with the Optional bit set
// may be ignored by a build that does not know them.
type Kind byte

// Event kinds. Their numbers are part of the log format: never reuse one.
const (
	KindObservation Kind = 1
	KindSyncVerdict Kind = 2
	KindBeat        Kind = 3
	KindCommand     Kind = 4
	KindDecision    Kind = 5
	KindTick        Kind = 6
	KindVerdictSet  Kind = 7

	// Optional marks a kind that an older build may skip: it decodes to
	// Unknown and Apply ignores it. A kind without the bit that a build does
	// not know is a decoding error.
	Optional Kind = 0x80
)

// Event is something that happened, with the time it happened at. Apply is
// the only way the state changes, and only by events. The set of events is
// closed: Observation, SyncVerdict, VerdictSet, Beat, Command, Decision,
// Tick, Unknown.
type Event interface {
	Kind() Kind
	EventTime() time.Time
	isEvent()
}

// Observation is one node's verdict on one check of one endpoint of a site
// (Endpoint "" for a site-wide check), after the node's rise/fall thresholds.
type Observation struct {
	Time     time.Time `json:"time"`
	Node     string    `json:"node"`
	Site     string    `json:"site"`
	Endpoint string    `json:"endpoint"`
	Check    string    `json:"check"`
	Up       bool      `json:"up"`
	Reason   string    `json:"reason"`
}

// SyncVerdict is one node's verdict of a site's sync check.
type SyncVerdict struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Site   string    `json:"site"`
	Check  string    `json:"check"`
	InSync bool      `json:"in_sync"`
	Reason string    `json:"reason"`
}

// Beat says a node is alive (its votes keep counting for vote_ttl), and
// carries what the node reports about itself. Clock, Digest and Verdicts are
// shown in NodeStatus and never affect a decision.
type Beat struct {
	// Time is stamped by the leader, like every event's.
	Time time.Time `json:"time"`
	Node string    `json:"node"`
	// Clock is the sender's wall clock when it sent the beat (zero: not
	// reported); it must lie in years 0..9999.
	Clock time.Time `json:"clock"`
	// Digest is the sender's config digest, "sha256:<hex>" of its
	// configuration and the zone data it serves ("" : not reported).
	Digest string `json:"digest,omitempty"`
	// Verdicts is VerdictsDigest of the sender's current verdicts.
	Verdicts string `json:"verdicts,omitempty"`
}

// VerdictSet is a node's full resend of its current verdicts: it replaces
// every check vote and sync vote the state holds for Node (seams.md §2).
// Every verdict in it is given at the set's Time (after clamping, as for any
// event): the Time and Node fields of its elements are ignored, except that
// a Node that is not empty must be the set's Node. No two observations may
// name the same (site, endpoint, check), no two sync verdicts the same site.
//
// Apply treats it as the node's verdicts applied one by one at the same
// instant from a clean slate for that node, with no intermediate state
// observed: the observations first (health and the sync rules are then
// evaluated once), then the sync verdicts (evaluated once more). So a sync
// verdict in the set counts even when the set's observations make the site
// lose in_sync — it is given at that moment, after the loss — as does a
// still-current verdict re-sent after an earlier loss had forgotten it.
//
// An element naming a site, endpoint or sync check that the state's spec
// does not have (the sender's config differs) is skipped, and
// Result.Ignored lists it; KnownVerdicts filters a set the same way.
type VerdictSet struct {
	Time         time.Time     `json:"time"`
	Node         string        `json:"node"`
	Observations []Observation `json:"observations"`
	Sync         []SyncVerdict `json:"sync"`
}

// Tick only advances time: health, sync and conditions are recomputed at it.
// The leader commits one periodically (at least every vote_ttl/2).
type Tick struct {
	Time time.Time `json:"time"`
}

// MoveKind says why a decision moves a route.
type MoveKind string

// Move kinds.
const (
	MoveFailover MoveKind = "failover" // away from a down active site
	MoveFailback MoveKind = "failback" // back to a preferred site
	MoveDrain    MoveKind = "drain"    // away from a drained active site
)

// Move changes one route's active site.
type Move struct {
	Route  string   `json:"route"`
	From   string   `json:"from"`
	To     string   `json:"to"`
	Kind   MoveKind `json:"kind"`
	Reason string   `json:"reason"`
}

// Decision is what Decide proposes for one service: route moves computed
// from the service's Epoch. Apply ignores it if the epoch is no longer the
// service's (a newer decision or command happened) or if the moves are no
// longer what Decide would propose at the decision's time.
type Decision struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Epoch   uint64    `json:"epoch"`
	Moves   []Move    `json:"moves"`
	Actor   string    `json:"actor,omitempty"`
}

// Unknown is an optional event of a kind this build does not know. Apply
// ignores it.
type Unknown struct {
	K       Kind
	Payload []byte
}

func (e Observation) Kind() Kind { return KindObservation }
func (e SyncVerdict) Kind() Kind { return KindSyncVerdict }
func (e Beat) Kind() Kind        { return KindBeat }
func (e VerdictSet) Kind() Kind  { return KindVerdictSet }
func (e Command) Kind() Kind     { return KindCommand }
func (e Decision) Kind() Kind    { return KindDecision }
func (e Tick) Kind() Kind        { return KindTick }
func (e Unknown) Kind() Kind     { return e.K }

func (e Observation) EventTime() time.Time { return e.Time }
func (e SyncVerdict) EventTime() time.Time { return e.Time }
func (e Beat) EventTime() time.Time        { return e.Time }
func (e VerdictSet) EventTime() time.Time  { return e.Time }
func (e Command) EventTime() time.Time     { return e.Time }
func (e Decision) EventTime() time.Time    { return e.Time }
func (e Tick) EventTime() time.Time        { return e.Time }

// EventTime is zero: an ignored event does not move the clock.
func (e Unknown) EventTime() time.Time { return time.Time{} }

func (Observation) isEvent() {}
func (SyncVerdict) isEvent() {}
func (Beat) isEvent()        {}
func (VerdictSet) isEvent()  {}
func (Command) isEvent()     {}
func (Decision) isEvent()    {}
func (Tick) isEvent()        {}
func (Unknown) isEvent()     {}

// EncodeEvent encodes e as its kind byte followed by its JSON payload.
func EncodeEvent(e Event) ([]byte, error) {
	if u, ok := e.(Unknown); ok {
		if u.K&Optional == 0 {
			return nil, fmt.Errorf("encode event: unknown kind 0x%02x is not optional", byte(u.K))
		}
		return append([]byte{byte(u.K)}, u.Payload...), nil
	}
	if e == nil {
		return nil, errors.New("encode event: nil event")
	}
	p, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event kind %d: %w", e.Kind(), err)
	}
	return append([]byte{byte(e.Kind())}, p...), nil
}

// DecodeEvent decodes what EncodeEvent made. Times come back in UTC. Unknown
// JSON fields are errors (a new field needs a new kind); an unknown kind is
// an error unless it has the Optional bit, then it decodes to Unknown.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) == 0 {
		return nil, errors.New("decode event: empty input")
	}
	k, p := Kind(b[0]), b[1:]
	var (
		e   Event
		err error
	)
	switch k {
	case KindObservation:
		e, err = decodeAs(p, func(v *Observation) []*time.Time { return []*time.Time{&v.Time} })
	case KindSyncVerdict:
		e, err = decodeAs(p, func(v *SyncVerdict) []*time.Time { return []*time.Time{&v.Time} })
	case KindBeat:
		e, err = decodeAs(p, func(v *Beat) []*time.Time { return []*time.Time{&v.Time, &v.Clock} })
	case KindVerdictSet:
		e, err = decodeAs(p, func(v *VerdictSet) []*time.Time {
			ts := []*time.Time{&v.Time}
			for i := range v.Observations {
				ts = append(ts, &v.Observations[i].Time)
			}
			for i := range v.Sync {
				ts = append(ts, &v.Sync[i].Time)
			}
			return ts
		})
	case KindCommand:
		e, err = decodeAs(p, func(v *Command) []*time.Time { return []*time.Time{&v.Time} })
	case KindDecision:
		e, err = decodeAs(p, func(v *Decision) []*time.Time { return []*time.Time{&v.Time} })
	case KindTick:
		e, err = decodeAs(p, func(v *Tick) []*time.Time { return []*time.Time{&v.Time} })
	default:
		if k&Optional != 0 {
			return Unknown{K: k, Payload: bytes.Clone(p)}, nil
		}
		return nil, fmt.Errorf("decode event: unknown kind 0x%02x", byte(k))
	}
	if err != nil {
		return nil, fmt.Errorf("decode event kind %d: %w", k, err)
	}
	return e, nil
}

// decodeAs decodes the JSON payload of one event type; at points at its
// times, which come back in UTC.
func decodeAs[T Event](p []byte, at func(*T) []*time.Time) (Event, error) {
	var v T
	err := strictJSON(p, &v)
	for _, t := range at(&v) {
		*t, err = utc(*t, err)
	}
	return v, err
}

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

// utc normalises a decoded time to UTC and refuses one that would not encode
// again (outside years 0..9999).
func utc(t time.Time, err error) (time.Time, error) {
	if err != nil {
		return t, err
	}
	t = t.UTC()
	if !encodable(t) {
		return t, fmt.Errorf("time %s out of range", t)
	}
	return t, nil
}

// maxTime is the latest time that encodes as JSON (RFC 3339 has 4-digit
// years).
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// encodable reports whether t lies in years 0..9999 (in UTC).
func encodable(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}
