package web

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// Memory is a Backend over a failover.State held in this process: a
// one-node log without persistence or replication. Every applied event or
// accepted command takes the next log index and publishes a new View. It
// serves tests (the web handlers and failoverctl are tested over it) and
// offline tools; a running node uses its cluster instead.
type Memory struct {
	mu      sync.Mutex
	state   *failover.State
	index   uint64
	leader  string
	quorum  bool
	applied map[string]uint64
	ttl     map[string]time.Duration
	node    string
	view    *View
	changed chan struct{}

	// WaitAllHook, when set, replaces WaitAll's default (which returns at
	// once: this process is every node).
	WaitAllHook func(ctx context.Context, index uint64) error
}

// NewMemory starts a log for s (which Memory then owns) as node self, the
// leader with a quorum.
func NewMemory(s *failover.State, self string) *Memory {
	m := &Memory{state: s, leader: self, quorum: true, node: self, applied: map[string]uint64{},
		ttl: map[string]time.Duration{}, changed: make(chan struct{})}
	m.publishLocked()
	return m
}

// publishLocked builds a new View and closes the old Changed channel.
func (m *Memory) publishLocked() {
	m.applied[m.node] = m.index
	m.view = &View{Index: m.index, State: m.state.Clone(), Leader: m.leader, Quorum: m.quorum,
		Applied: maps.Clone(m.applied), TTL: maps.Clone(m.ttl)}
	close(m.changed)
	m.changed = make(chan struct{})
}

// Apply applies e as the next log entry (whatever its effect) and publishes.
func (m *Memory) Apply(e failover.Event) (failover.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	res, err := failover.Apply(m.state, e)
	m.index++
	m.publishLocked()
	return res, err
}

// SetQuorum sets whether this node has a quorum (and a leader: itself).
func (m *Memory) SetQuorum(ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.quorum = ok
	m.leader = ""
	if ok {
		m.leader = m.node
	}
	m.publishLocked()
}

// SetApplied records another node's applied index, as a cluster learns it.
func (m *Memory) SetApplied(node string, index uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.applied[node] = index
	m.publishLocked()
}

// SetTTL sets a service's answer TTL shown in the documents.
func (m *Memory) SetTTL(service string, ttl time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ttl[service] = ttl
	m.publishLocked()
}

// View implements Backend.
func (m *Memory) View() *View {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.view
}

// Changed implements Backend.
func (m *Memory) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Submit implements Backend: without a quorum it fails with ErrUnavailable;
// a command the guards refuse (failover.Check) is not logged, as a leader
// would refuse it before proposing; an accepted one is applied as the next
// entry.
func (m *Memory) Submit(ctx context.Context, c failover.Command) (Applied, error) {
	if err := ctx.Err(); err != nil {
		return Applied{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.quorum {
		return Applied{}, fmt.Errorf("%w: no leader", ErrUnavailable)
	}
	if err := failover.Check(m.state, c); err != nil {
		return Applied{}, err
	}
	res, err := failover.Apply(m.state, c)
	if err != nil {
		return Applied{}, err
	}
	m.index++
	m.publishLocked()
	out := Applied{Index: m.index, Entries: res.Entries}
	if res.Entries == nil {
		out.Entries = []failover.Entry{}
	}
	if c.Service != "" {
		for _, s := range m.state.Status().Services {
			if s.Name == c.Service {
				out.Epoch = s.Epoch
			}
		}
	}
	return out, nil
}

// WaitAll implements Backend.
func (m *Memory) WaitAll(ctx context.Context, index uint64) error {
	if m.WaitAllHook != nil {
		return m.WaitAllHook(ctx, index)
	}
	return ctx.Err()
}
