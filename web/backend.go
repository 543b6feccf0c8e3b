package web

import (
	"context"
	"errors"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// Backend is what the HTTP side needs from the node: the replicated state as
// last applied here, a way to commit commands through the leader, and a
// signal when the state changes. The node adapts its cluster to it; tests use
// a fake built on a real failover.State.
type Backend interface {
	// View returns the latest published view; never nil, never mutated
	// after it is returned.
	View() *View
	// Changed returns a channel that is closed when View may return
	// something new (and replaced by a new channel). The HTTP side reads
	// the view again only after it is closed, and renders its documents
	// again when something they show changed beyond volatile fields
	// (Options.DocRefresh).
	Changed() <-chan struct{}
	// Submit commits c through the leader (from any node) and returns once
	// the leader has applied it. Errors: one wrapping ErrUnavailable (no
	// leader reachable within the bounded wait, no quorum, a halted state
	// machine: answered 503), a
	// *failover.CommandError wrapping failover.ErrRefused (409) or
	// failover.ErrInvalid (422), unchanged when forwarded; ctx's error on
	// timeout (503).
	Submit(ctx context.Context, c failover.Command) (Applied, error)
	// WaitAll returns when every reachable node has applied index, or ctx's
	// error.
	WaitAll(ctx context.Context, index uint64) error
}

// ErrUnavailable is what a Backend wraps when it cannot commit: no leader
// reachable within its bounded wait, no quorum. The node wraps the cluster's
// own error with it (errors.Is must hold).
var ErrUnavailable = errors.New("unavailable: no quorum")

// Applied says where a command was committed.
type Applied struct {
	// Index is the log index it was committed at.
	Index uint64
	// Epoch is the command's service's epoch after it (0 for site commands).
	Epoch uint64
	// Entries are the history entries the command added, as the leader's
	// Apply returned them; nil when the backend does not know them (the
	// HTTP side then finds them in the view: the newest command entries of
	// the same actor and op at one instant).
	Entries []failover.Entry
}

// View is one consistent picture of the replicated state on this node.
type View struct {
	// Index is the log index State reflects.
	Index uint64
	// State is read-only: a clone nobody mutates. Nil only before the node
	// has a state; the documents then say so (no services).
	State *failover.State
	// Leader is the leader's node id, "" when none is known.
	Leader string
	// Quorum is false when this node cannot reach a quorum: it serves the
	// last committed state and refuses commands.
	Quorum bool
	// Applied is each node's applied log index as far as this node knows
	// (its own at least); missing nodes show 0 (unknown).
	Applied map[string]uint64
	// TTL is each service's answer TTL from the configuration; missing
	// services show "0s".
	TTL map[string]time.Duration
	// Halted is why this node's state machine stopped applying (it then
	// serves State as of Index and refuses writes), or "".
	Halted string
}
