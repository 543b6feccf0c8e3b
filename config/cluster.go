package config

// The [cluster] section: the nodes that agree on decisions (raft), their
// transport security, and the timing of agreement and of votes.

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
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
	// Join is for a node added to a running cluster: on its first start it
	// does not bootstrap (a bootstrap from another member list would fork
	// the log's first entry) but waits for the leader, whose configuration
	// lists it, to add it. Ignored once the node has state. Per node: not
	// part of the config digest.
	Join bool `toml:"join"`
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

// finishCluster fills in the derived defaults of [cluster] and validates it.
func (c *Config) finishCluster(v *validator) {
	cl := &c.Cluster
	c.finishClusterTiming(v)

	voters := 1 // the one-node cluster
	if len(cl.Nodes) == 0 {
		for _, k := range []struct {
			key string
			set bool
		}{{"listen", cl.Listen.IsValid()}, {"ca", cl.CA != ""}, {"cert", cl.Cert != ""}, {"key", cl.Key != ""}} {
			if k.set {
				v.errorf("cluster."+k.key, "given without cluster.nodes: a node with no nodes listed is a one-node cluster and listens for no peers")
			}
		}
	} else {
		voters = c.finishClusterNodes(v)
	}
	if cl.Join && len(cl.Nodes) < 2 {
		v.errorf("cluster.join", "a node can only join a cluster of several nodes: list them in cluster.nodes")
	}

	switch m := cl.MinQuorum; {
	case m < 0:
		v.errorf("cluster.min_quorum", "%d is negative (0: a strict majority of the voters)", m)
	case m > voters:
		v.errorf("cluster.min_quorum", "%d is more than the %d configured voters: no site could ever be seen down", m, voters)
	case m > 0 && m < Majority(voters):
		v.warnf("cluster.min_quorum", "%d is below a strict majority of the %d voters (%d): %d nodes cut off from the others could fail services over on their own", m, voters, Majority(voters), m)
	}
	if cl.HistoryLimit < 1 || cl.HistoryLimit > 1_000_000 {
		v.errorf("cluster.history_limit", "%d is out of range 1..1000000", cl.HistoryLimit)
	}
}

func (c *Config) finishClusterTiming(v *validator) {
	cl := &c.Cluster
	if cl.VoteTTL.Duration < time.Second {
		v.errorf("cluster.vote_ttl", "%s is too short (minimum 1s)", cl.VoteTTL.Duration)
	}
	if !v.defined("cluster", "beat_interval") {
		cl.BeatInterval.Duration = cl.VoteTTL.Duration / 3
	}
	switch b := cl.BeatInterval.Duration; {
	case b < 100*time.Millisecond:
		v.errorf("cluster.beat_interval", "%s is too short (minimum 100ms)", b)
	case b >= cl.VoteTTL.Duration:
		v.errorf("cluster.beat_interval", "%s is not shorter than vote_ttl (%s): every node would go stale between two beats", b, cl.VoteTTL.Duration)
	case b > cl.VoteTTL.Duration/2:
		v.warnf("cluster.beat_interval", "%s is more than half of vote_ttl (%s): one lost beat makes a node stale", b, cl.VoteTTL.Duration)
	}
	// hashicorp/raft's ValidateConfig rules, reported where they are written.
	for _, d := range []struct {
		key string
		v   time.Duration
		min time.Duration
	}{
		{"heartbeat_timeout", cl.HeartbeatTimeout.Duration, 5 * time.Millisecond},
		{"election_timeout", cl.ElectionTimeout.Duration, 5 * time.Millisecond},
		{"leader_lease_timeout", cl.LeaderLeaseTimeout.Duration, 5 * time.Millisecond},
		{"commit_timeout", cl.CommitTimeout.Duration, time.Millisecond},
		{"snapshot_interval", cl.SnapshotInterval.Duration, time.Second},
		{"write_timeout", cl.WriteTimeout.Duration, 100 * time.Millisecond},
		{"max_clock_skew", cl.MaxClockSkew.Duration, 10 * time.Millisecond},
	} {
		if d.v < d.min {
			v.errorf("cluster."+d.key, "%s is too short (minimum %s)", d.v, d.min)
		}
	}
	if cl.ElectionTimeout.Duration < cl.HeartbeatTimeout.Duration {
		v.errorf("cluster.election_timeout", "%s is shorter than heartbeat_timeout (%s); raft needs it equal or longer", cl.ElectionTimeout.Duration, cl.HeartbeatTimeout.Duration)
	}
	if cl.LeaderLeaseTimeout.Duration > cl.HeartbeatTimeout.Duration {
		v.errorf("cluster.leader_lease_timeout", "%s is longer than heartbeat_timeout (%s); raft needs it equal or shorter", cl.LeaderLeaseTimeout.Duration, cl.HeartbeatTimeout.Duration)
	}
	if cl.MaxClockSkew.Duration >= cl.VoteTTL.Duration {
		v.errorf("cluster.max_clock_skew", "%s is not shorter than vote_ttl (%s): a clock that far off would make every vote's age meaningless", cl.MaxClockSkew.Duration, cl.VoteTTL.Duration)
	}
	if cl.SnapshotThreshold < 1 {
		v.errorf("cluster.snapshot_threshold", "%d: must be at least 1", cl.SnapshotThreshold)
	}
}

// finishClusterNodes validates cluster.nodes, node.id's membership, listen
// and the TLS files, and returns the number of voters.
func (c *Config) finishClusterNodes(v *validator) int {
	cl := &c.Cluster
	ids := map[string]int{}
	rafts := map[netip.AddrPort]int{}
	https := map[HostPort]int{}
	self := -1
	voters := 0
	for i, n := range cl.Nodes {
		key := fmt.Sprintf("cluster.nodes[%d]", i)
		if !isLabel(n.ID) {
			v.errorf(key, "id %q is not a plain name: use letters, digits, '-' and '_'", n.ID)
		}
		if j, dup := ids[n.ID]; dup {
			v.errorf(key, "id %q is listed twice (also at cluster.nodes[%d])", n.ID, j)
		} else {
			ids[n.ID] = i
		}
		if a := n.Raft.AddrPort; a.Addr().IsUnspecified() || a.Port() == 0 {
			v.errorf(key, "raft address %s: peers dial it, so it needs a real IP address and port", a)
		}
		if j, dup := rafts[n.Raft.AddrPort]; dup {
			v.errorf(key, "raft address %s is also the address of cluster.nodes[%d] (%s)", n.Raft, j, cl.Nodes[j].ID)
		} else {
			rafts[n.Raft.AddrPort] = i
		}
		if n.HTTP != "" {
			if j, dup := https[n.HTTP]; dup {
				v.errorf(key, "http address %s is also the address of cluster.nodes[%d] (%s)", n.HTTP, j, cl.Nodes[j].ID)
			} else {
				https[n.HTTP] = i
			}
		}
		if n.ID == c.Node.ID {
			self = i
		}
		if n.Voter {
			voters++
		}
	}
	if voters == 0 {
		v.errorf("cluster.nodes", "no voter: at least one node must vote (voter = false is for extra non-voting nodes)")
	}
	if self < 0 {
		if c.Node.ID != "" {
			v.errorf("node.id", "%q is not one of cluster.nodes (%s)", c.Node.ID, strings.Join(clusterIDs(cl.Nodes), ", "))
		}
	} else {
		raft := cl.Nodes[self].Raft.AddrPort
		switch l := cl.Listen.AddrPort; {
		case !l.IsValid():
			cl.Listen.AddrPort = raft
		case l.Port() != raft.Port():
			v.errorf("cluster.listen", "port %d differs from this node's raft address %s (cluster.nodes[%d]): peers dial the raft address, so listen on its port", l.Port(), raft, self)
		case l.Addr() != raft.Addr() && !l.Addr().IsUnspecified():
			v.errorf("cluster.listen", "%s is not this node's raft address %s (cluster.nodes[%d]) nor an unspecified address (0.0.0.0 or [::]) that covers it", l, raft, self)
		}
	}
	c.finishClusterTLS(v, self)
	return voters
}

func clusterIDs(nodes []ClusterNode) []string {
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return ids
}

// finishClusterTLS resolves and checks the CA, certificate and key: they load,
// the certificate is signed by the CA, is valid now, and names node.id.
func (c *Config) finishClusterTLS(v *validator, self int) {
	cl := &c.Cluster
	cl.CA, cl.Cert, cl.Key = c.path(cl.CA), c.path(cl.Cert), c.path(cl.Key)
	given := 0
	for _, f := range []string{cl.CA, cl.Cert, cl.Key} {
		if f != "" {
			given++
		}
	}
	if given == 0 {
		if len(cl.Nodes) > 1 {
			v.errorf("cluster", "ca, cert and key are required with more than one node: raft runs over mutual TLS only")
		}
		return
	}
	for _, k := range []struct{ key, file string }{{"ca", cl.CA}, {"cert", cl.Cert}, {"key", cl.Key}} {
		if k.file == "" {
			v.errorf("cluster."+k.key, "missing: ca, cert and key go together")
		}
	}
	if given < 3 {
		return
	}
	for _, k := range []struct{ key, file string }{{"ca", cl.CA}, {"cert", cl.Cert}, {"key", cl.Key}} {
		if err := smallFile(k.file); err != nil {
			v.errorf("cluster."+k.key, "%v", err)
			return
		}
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(cl.CA)
	if err != nil {
		v.errorf("cluster.ca", "%v", err)
		return
	}
	if !pool.AppendCertsFromPEM(pem) {
		v.errorf("cluster.ca", "%s holds no PEM certificate", cl.CA)
		return
	}
	pair, err := tls.LoadX509KeyPair(cl.Cert, cl.Key)
	if err != nil {
		v.errorf("cluster.cert", "%v", err)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		v.errorf("cluster.cert", "%s: %v", cl.Cert, err)
		return
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		v.errorf("cluster.cert", "%s is not a valid certificate of the cluster CA %s: %v", cl.Cert, cl.CA, err)
	}
	if self >= 0 && !slices.Contains(leaf.DNSNames, c.Node.ID) {
		v.errorf("cluster.cert", "%s does not name node %q in a DNS SAN (it names %v): peers would refuse it", cl.Cert, c.Node.ID, leaf.DNSNames)
	}
}

// smallFile checks that file is a regular file of at most 1 MiB, so that a
// device or a huge file named by mistake is refused instead of read forever.
func smallFile(file string) error {
	st, err := os.Stat(file)
	switch {
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", file)
	case st.Size() > 1<<20:
		return fmt.Errorf("%s is larger than 1 MiB: not a PEM certificate or key", file)
	}
	return nil
}
