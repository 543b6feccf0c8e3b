package config

// The [cluster] section: the nodes that agree on decisions (raft), their
// transport security, and the timing of agreement and of votes.

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults of [cluster]. The raft timings are hashicorp/raft's own defaults
// (DefaultConfig), which suit a LAN or a few tens of milliseconds between
// nodes; raise them together for slower links.
const (
	DefaultVoteTTL            = 15 * time.Second
	DefaultHeartbeatTimeout   = time.Second
	DefaultElectionTimeout    = time.Second
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
	DefaultCommitTimeout      = 50 * time.Millisecond
	DefaultMaxClockSkew       = 2 * time.Second
	DefaultWriteTimeout       = 5 * time.Second
	DefaultSnapshotInterval   = 120 * time.Second
	DefaultSnapshotThreshold  = 8192
	// DefaultHistoryLimit equals failover.DefaultHistoryLimit.
	DefaultHistoryLimit = 1000
)

// Cluster is the [cluster] section.
//
// With no Nodes the node is a one-node cluster (raft with one voter, node.id)
// and Listen, CA, Cert and Key must be unset. With Nodes, node.id must be one
// of them; with more than one node, CA, Cert and Key are required (raft runs
// over mutual TLS only).
type Cluster struct {
	// Listen is where raft and the forwarding of writes to the leader are
	// served (mutual TLS). Default: this node's raft address. It may differ
	// from it only in the IP: an unspecified address (0.0.0.0, ::) to listen
	// on every interface; the port must be the raft port peers dial.
	Listen AddrPort `toml:"listen"`
	// CA is the PEM file of the cluster's certificate authority; Cert and
	// Key this node's certificate (which names node.id in a DNS SAN, signed
	// by CA) and its private key. Relative to the config file; resolved to
	// full paths by validation.
	CA   string `toml:"ca"`
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
	// Nodes are every member of the cluster, identical on every node; the
	// cluster bootstraps from this list on first start.
	Nodes []ClusterNode `toml:"nodes"`

	// VoteTTL is how long a node's verdicts count after it was last heard
	// from (default 15s).
	VoteTTL Duration `toml:"vote_ttl"`
	// BeatInterval is how often each node sends its liveness beat (config
	// digest, clock, verdict digest); default VoteTTL/3, must be below VoteTTL.
	BeatInterval Duration `toml:"beat_interval"`
	// Raft timing (hashicorp/raft Config fields of the same names).
	HeartbeatTimeout   Duration `toml:"heartbeat_timeout"`
	ElectionTimeout    Duration `toml:"election_timeout"`
	LeaderLeaseTimeout Duration `toml:"leader_lease_timeout"`
	CommitTimeout      Duration `toml:"commit_timeout"`
	// MaxClockSkew is how far the leader's clock may be from the median of
	// the fresh nodes' clocks before it stops stamping entries and hands
	// leadership over (default 2s; must be below VoteTTL).
	MaxClockSkew Duration `toml:"max_clock_skew"`
	// WriteTimeout bounds how long a write (command, observation) waits for
	// a leader and a quorum before failing with "no quorum" (default 5s).
	WriteTimeout Duration `toml:"write_timeout"`
	// SnapshotInterval and SnapshotThreshold: raft checks every interval
	// whether more than threshold log entries have been written since the
	// last snapshot, and then takes one (defaults 120s and 8192).
	SnapshotInterval  Duration `toml:"snapshot_interval"`
	SnapshotThreshold int      `toml:"snapshot_threshold"`
	// MinQuorum is the least number of voters that must agree a site is down.
	// 0 (default) means a strict majority of the configured voters (4 of 6).
	// A smaller value is allowed, with a warning: a minority cut off from
	// the world could then fail services over on its own.
	MinQuorum int `toml:"min_quorum"`
	// TrustHealthWithoutSync lets a site that has no sync check regain
	// in_sync as soon as it is healthy, instead of waiting for
	// `failoverctl mark-synced` (default false).
	TrustHealthWithoutSync bool `toml:"trust_health_without_sync"`
	// HistoryLimit is the number of history entries (decisions, commands)
	// the cluster keeps (default 1000).
	HistoryLimit int `toml:"history_limit"`
}

// ClusterNode is one member of [cluster] nodes, written as an inline table
// { id = "ns1", raft = "127.0.0.11:7000", http = "127.0.0.11:8053" } with an
// optional voter = false (a non-voter replicates the log and answers DNS but
// neither votes on site health nor counts for raft's quorum).
type ClusterNode struct {
	// ID is the node's id (a plain label), named in its certificate's DNS SAN.
	ID string
	// Raft is the address peers dial for raft and forwarding.
	Raft AddrPort
	// HTTP is the node's HTTP API address (host:port), used to reach it
	// from other nodes and from failoverctl.
	HTTP HostPort
	// Voter is true unless voter = false is written.
	Voter bool
}

var clusterNodeKeys = map[string]bool{"id": true, "raft": true, "http": true, "voter": true}

// UnmarshalTOML implements toml.Unmarshaler for an inline table.
func (n *ClusterNode) UnmarshalTOML(data any) error {
	d, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("cluster node must be a table { id = ..., raft = ..., http = ... }, not %T", data)
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	*n = ClusterNode{Voter: true}
	for _, k := range keys {
		if !clusterNodeKeys[k] {
			return fmt.Errorf("cluster node: unknown key %q (want id, raft, http, voter)", k)
		}
		if k == "voter" {
			b, ok := d[k].(bool)
			if !ok {
				return fmt.Errorf("cluster node: voter must be true or false, not %T", d[k])
			}
			n.Voter = b
			continue
		}
		s, ok := d[k].(string)
		if !ok {
			return fmt.Errorf("cluster node: %s must be a string, not %T", k, d[k])
		}
		var err error
		switch k {
		case "id":
			n.ID = s
		case "raft":
			err = n.Raft.UnmarshalText([]byte(s))
		case "http":
			err = n.HTTP.UnmarshalText([]byte(s))
		}
		if err != nil {
			return fmt.Errorf("cluster node %s: %w", k, err)
		}
	}
	if n.ID == "" {
		return fmt.Errorf("cluster node: id missing in %v", d)
	}
	if !n.Raft.IsValid() {
		return fmt.Errorf("cluster node %q: raft address missing", n.ID)
	}
	return nil
}

// Voters returns the ids of the voting members, in config order; for a
// one-node cluster (no nodes), nil.
func (c *Cluster) Voters() []string {
	var ids []string
	for _, n := range c.Nodes {
		if n.Voter {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// Majority is the strict majority of n voters: n/2+1.
func Majority(n int) int { return n/2 + 1 }

func defaultCluster() Cluster {
	return Cluster{
		VoteTTL:            Duration{DefaultVoteTTL},
		HeartbeatTimeout:   Duration{DefaultHeartbeatTimeout},
		ElectionTimeout:    Duration{DefaultElectionTimeout},
		LeaderLeaseTimeout: Duration{DefaultLeaderLeaseTimeout},
		CommitTimeout:      Duration{DefaultCommitTimeout},
		MaxClockSkew:       Duration{DefaultMaxClockSkew},
		WriteTimeout:       Duration{DefaultWriteTimeout},
		SnapshotInterval:   Duration{DefaultSnapshotInterval},
		SnapshotThreshold:  DefaultSnapshotThreshold,
		HistoryLimit:       DefaultHistoryLimit,
	}
}

// HostPort is a host name or IP address with a port ("ns1.example.net:8053",
// "127.0.0.1:8053", "[::1]:8053"), stored in the canonical form
// net.JoinHostPort gives.
type HostPort string

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HostPort) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("bad address %q: want host:port, with [ ] around an IPv6 address", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("bad address %q: port %q is not 1..65535", s, port)
	}
	if !isAddrOrHost(host) {
		return fmt.Errorf("bad address %q: %q is not an IP address or host name", s, host)
	}
	*h = HostPort(net.JoinHostPort(strings.ToLower(host), strconv.Itoa(n)))
	return nil
}

// String returns the address as host:port.
func (h HostPort) String() string { return string(h) }
