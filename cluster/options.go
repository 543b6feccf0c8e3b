package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geodnsd/geodnsd/failover"
)

// Member is one cluster member as configured.
type Member struct {
	// ID is the node id; the member's certificate names it in a DNS SAN.
	ID string
	// Raft is the member's raft and forwarding address (mutual TLS).
	Raft netip.AddrPort
	// HTTP is the member's HTTP address, for the status surfaces; the
	// cluster only carries it.
	HTTP string
	// Voter is true for a raft voter, false for a non-voter (it receives
	// the log but does not count towards raft's quorum).
	Voter bool
}

// TLSFiles names the PEM files of the cluster's mutual TLS.
type TLSFiles struct {
	CA   string // the cluster CA certificate
	Cert string // this node's certificate; a DNS SAN names the node id
	Key  string // this node's private key
}

// Options configure a Cluster. The zero value of every field but ID,
// Members and Spec is usable (defaults below).
type Options struct {
	// ID is this node's id; it must be one of Members.
	ID string
	// Members lists every member, this node included. One member and no
	// TLS is the one-node cluster (raft's in-memory transport, no socket).
	Members []Member
	// Listen is the address to listen on for raft and forwarding (mutual
	// TLS). Zero means this member's Raft address.
	Listen netip.AddrPort
	// Listener, if set, is used instead of listening on Listen (a socket
	// bound beforehand, e.g. by a test on 127.0.0.1:0). The cluster closes
	// it at Shutdown.
	Listener net.Listener
	// TLS names the CA, certificate and key; nil only for a one-node
	// cluster.
	TLS *TLSFiles
	// StateDir holds the raft log and stable store (raft.db), the file
	// snapshots (snapshots/) and the identity file (identity.json). Empty
	// means in-memory stores: nothing survives Shutdown.
	StateDir string
	// Join is for a node added to a running cluster: on first start it
	// does not bootstrap (a bootstrap with another member list would fork
	// the log's first entry); it waits until the leader, whose
	// configuration lists it, adds it. Ignored on later starts.
	Join bool
	// ClusterID, if set, names the cluster; a state directory made for
	// another cluster id is refused. Empty: the id is derived at bootstrap
	// from the sorted member ids.
	ClusterID string
	// Spec is the failover spec the cluster is bootstrapped with; later
	// changes go through Respec (the log keeps the spec in force).
	Spec failover.Spec

	// HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout and
	// CommitTimeout are raft's (defaults 1 s, 1 s, 500 ms, 20 ms).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold and TrailingLogs are raft's (defaults 8192 and
	// 10240 entries); SnapshotInterval is how often raft considers a
	// snapshot (default 2 min).
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotInterval  time.Duration
	// TickInterval is how often the leader applies a Tick and runs Decide
	// (default 1 s).
	TickInterval time.Duration
	// BeatInterval is how often this node sends a Beat (default
	// Spec.VoteTTL/3, or 5 s without one).
	BeatInterval time.Duration
	// MaxClockSkew is the largest difference between the leader's clock and
	// the median of the other fresh nodes' clocks that the leader accepts
	// before it stops stamping and hands leadership over (default 2 s).
	MaxClockSkew time.Duration
	// WriteTimeout bounds how long a write (Submit, Observe, Respec) waits
	// for a leader and for its entry to commit before it fails with
	// ErrNoQuorum (default 5 s). A context with an earlier deadline wins.
	WriteTimeout time.Duration
	// ContactTimeout is how recently a follower must have heard from its
	// leader to report HasQuorum (default 2 × HeartbeatTimeout).
	ContactTimeout time.Duration

	// Digest returns this node's config digest ("sha256:<hex>"), sent in
	// every beat. Nil sends "".
	Digest func() string
	// Verdicts returns this node's current verdicts (their times are
	// ignored: the leader stamps). Nil means none. Called from the beat
	// loop.
	Verdicts func() ([]failover.Observation, []failover.SyncVerdict)
	// Now is the wall clock (default time.Now); tests inject a skewed one.
	Now func() time.Time

	Logger   *slog.Logger
	Registry *prometheus.Registry
}

// withDefaults returns o with every zero timing filled in, and checks it.
func (o Options) withDefaults() (Options, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HeartbeatTimeout, time.Second)
	def(&o.ElectionTimeout, time.Second)
	def(&o.LeaderLeaseTimeout, 500*time.Millisecond)
	def(&o.CommitTimeout, 20*time.Millisecond)
	def(&o.SnapshotInterval, 2*time.Minute)
	def(&o.TickInterval, time.Second)
	if o.BeatInterval <= 0 {
		o.BeatInterval = 5 * time.Second
		if o.Spec.VoteTTL > 0 {
			o.BeatInterval = o.Spec.VoteTTL / 3
		}
	}
	def(&o.MaxClockSkew, 2*time.Second)
	def(&o.WriteTimeout, 5*time.Second)
	def(&o.ContactTimeout, 2*o.HeartbeatTimeout)
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = 8192
	}
	if o.TrailingLogs == 0 {
		o.TrailingLogs = 10240
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.LeaderLeaseTimeout > o.HeartbeatTimeout {
		return o, fmt.Errorf("cluster: leader lease timeout %s exceeds heartbeat timeout %s", o.LeaderLeaseTimeout, o.HeartbeatTimeout)
	}
	return o, checkMembers(o.ID, o.Members, o.TLS != nil || o.Listener != nil)
}

// checkMembers checks the member list: unique non-empty ids that can be DNS
// names, unique raft addresses, self listed, at least one voter.
func checkMembers(self string, ms []Member, networked bool) error {
	if self == "" {
		return errors.New("cluster: node id is empty")
	}
	if len(ms) == 0 {
		return errors.New("cluster: no members")
	}
	ids := map[string]bool{}
	addrs := map[netip.AddrPort]string{}
	voters := 0
	for i, m := range ms {
		if err := checkID(m.ID); err != nil {
			return fmt.Errorf("cluster: members[%d]: %w", i, err)
		}
		if ids[m.ID] {
			return fmt.Errorf("cluster: members[%d]: duplicate id %q", i, m.ID)
		}
		ids[m.ID] = true
		if networked || len(ms) > 1 {
			if !m.Raft.IsValid() || m.Raft.Port() == 0 {
				return fmt.Errorf("cluster: members[%d] (%s): raft address %q is not an address:port", i, m.ID, m.Raft)
			}
			if other, dup := addrs[m.Raft]; dup {
				return fmt.Errorf("cluster: members[%d] (%s): raft address %s is also %s's", i, m.ID, m.Raft, other)
			}
			addrs[m.Raft] = m.ID
		}
		if m.Voter {
			voters++
		}
	}
	if !ids[self] {
		return fmt.Errorf("cluster: node id %q is not among the members %v", self, memberIDs(ms))
	}
	if voters == 0 {
		return errors.New("cluster: no member is a voter")
	}
	return nil
}

// checkID accepts a node id that can be a DNS name label sequence (it is
// the certificate's DNS SAN): letters, digits, '-' and '.', 1..253 bytes.
func checkID(id string) error {
	if id == "" || len(id) > 253 {
		return fmt.Errorf("node id %q: must be 1..253 characters", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("node id %q: %q is not a letter, digit, '-' or '.'", id, r)
		}
	}
	return nil
}

func memberIDs(ms []Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	return ids
}
