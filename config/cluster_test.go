package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestClusterExample(t *testing.T) {
	dir := clusterDir(t)
	file := copyInto(t, dir, "testdata/cluster/ns2.toml")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}
	if c.Node.StateDir != filepath.Join(dir, "state/ns2") {
		t.Errorf("state_dir = %q, want it relative to the config file", c.Node.StateDir)
	}
	cl := c.Cluster
	if cl.CA != filepath.Join(dir, "certs/ca.pem") || cl.Cert != filepath.Join(dir, "certs/ns2.pem") || cl.Key != filepath.Join(dir, "certs/ns2-key.pem") {
		t.Errorf("tls files = %q %q %q", cl.CA, cl.Cert, cl.Key)
	}
	if len(cl.Nodes) != 6 || cl.Nodes[1].ID != "ns2" || cl.Nodes[1].Raft.String() != "127.0.0.12:7000" ||
		cl.Nodes[1].HTTP != "127.0.0.12:8053" || !cl.Nodes[5].Voter {
		t.Errorf("nodes = %+v", cl.Nodes)
	}
	if got := cl.Voters(); len(got) != 6 {
		t.Errorf("voters = %v", got)
	}
	if cl.Listen.String() != "0.0.0.0:7000" {
		t.Errorf("listen = %s", cl.Listen)
	}
	want := map[string][2]time.Duration{
		"vote_ttl":             {cl.VoteTTL.Duration, 12 * time.Second},
		"beat_interval":        {cl.BeatInterval.Duration, 4 * time.Second}, // vote_ttl/3
		"heartbeat_timeout":    {cl.HeartbeatTimeout.Duration, DefaultHeartbeatTimeout},
		"election_timeout":     {cl.ElectionTimeout.Duration, DefaultElectionTimeout},
		"leader_lease_timeout": {cl.LeaderLeaseTimeout.Duration, DefaultLeaderLeaseTimeout},
		"commit_timeout":       {cl.CommitTimeout.Duration, DefaultCommitTimeout},
		"max_clock_skew":       {cl.MaxClockSkew.Duration, time.Second},
		"write_timeout":        {cl.WriteTimeout.Duration, 5 * time.Second},
		"snapshot_interval":    {cl.SnapshotInterval.Duration, DefaultSnapshotInterval},
	}
	for k, w := range want {
		if w[0] != w[1] {
			t.Errorf("%s = %s, want %s", k, w[0], w[1])
		}
	}
	if cl.SnapshotThreshold != 8192 || cl.MinQuorum != 0 || cl.HistoryLimit != 1000 || cl.TrustHealthWithoutSync {
		t.Errorf("cluster = %+v", cl)
	}
}

func TestOneNodeDefaults(t *testing.T) {
	c, err := Parse([]byte(base), "/etc/geodnsd/geodnsd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.StateDir != "" {
		t.Errorf("state_dir = %q, want \"\" (a temporary directory)", c.Node.StateDir)
	}
	cl := c.Cluster
	if len(cl.Nodes) != 0 || cl.Listen.IsValid() || cl.CA != "" || cl.Voters() != nil {
		t.Errorf("one-node cluster = %+v", cl)
	}
	if cl.VoteTTL.Duration != 15*time.Second || cl.BeatInterval.Duration != 5*time.Second ||
		cl.MaxClockSkew.Duration != 2*time.Second || cl.WriteTimeout.Duration != 5*time.Second {
		t.Errorf("timing = %+v", cl)
	}
	h := c.HTTP
	if h.StatusRate != 10 || h.StatusBurst != 20 || h.AdminRate != 5 || h.AdminBurst != 10 || len(h.Tokens) != 0 {
		t.Errorf("http = %+v", h)
	}
	c, err = Parse([]byte("[node]\nid = \"ns1\"\nstate_dir = \"state\"\n[dns]\nlisten = [\"127.0.0.1:53\"]\n[cluster]\nnodes = [{ id = \"ns1\", raft = \"127.0.0.1:7000\" }]\n"), "/etc/g/g.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.StateDir != "/etc/g/state" || c.Cluster.Listen.String() != "127.0.0.1:7000" || !c.Cluster.Nodes[0].Voter || c.Cluster.Nodes[0].HTTP != "" {
		t.Errorf("one listed node without TLS: %+v %+v", c.Node, c.Cluster)
	}
}

// TestMinQuorumWarning: a min_quorum below a strict majority is allowed, and
// said loudly, with its position; a majority or more is silent.
func TestMinQuorumWarning(t *testing.T) {
	nodes := "[cluster]\nnodes = [\n  { id = \"ns1\", raft = \"127.0.0.1:7001\" },\n  { id = \"ns2\", raft = \"127.0.0.1:7002\" },\n  { id = \"ns3\", raft = \"127.0.0.1:7003\" },\n]\n"
	c, err := Parse([]byte(base+strings.Replace(nodes, "[cluster]\n", "[cluster]\nmin_quorum = 1\n", 1)+"ca = \"x\"\n"), "f.toml")
	if err == nil {
		t.Fatal("ca without cert and key accepted")
	}
	dir := clusterDir(t)
	tls := "ca = \"" + dir + "/certs/ca.pem\"\ncert = \"" + dir + "/certs/ns1.pem\"\nkey = \"" + dir + "/certs/ns1-key.pem\"\n"
	c, err = Parse([]byte(base+"[cluster]\nmin_quorum = 1\n"+tls+nodes[len("[cluster]\n"):]), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := "f.toml:6: cluster.min_quorum: warning: 1 is below a strict majority of the 3 voters (2)"
	if len(c.Warnings) != 1 || !strings.HasPrefix(c.Warnings[0], want) {
		t.Errorf("warnings = %q, want one starting %q", c.Warnings, want)
	}
	c, err = Parse([]byte(base+"[cluster]\nmin_quorum = 2\n"+tls+nodes[len("[cluster]\n"):]), "f.toml")
	if err != nil || len(c.Warnings) != 0 {
		t.Errorf("majority min_quorum: %v %q", err, c.Warnings)
	}
}

func TestClusterErrorsArePositioned(t *testing.T) {
	dir := clusterDir(t)
	tls := func(id string) string {
		return "ca = \"" + dir + "/certs/ca.pem\"\ncert = \"" + dir + "/certs/" + id + ".pem\"\nkey = \"" + dir + "/certs/" + id + "-key.pem\"\n"
	}
	two := "nodes = [\n  { id = \"ns1\", raft = \"127.0.0.11:7000\", http = \"127.0.0.11:8053\" },\n  { id = \"ns2\", raft = \"127.0.0.12:7000\", http = \"127.0.0.12:8053\" },\n]\n"
	// base is 4 lines; [cluster] is line 5; with tls(), ca/cert/key are 6-8 and nodes start at 9.
	cases := []struct {
		name, src string
		want      []string
	}{
		{"id not a member", "[cluster]\n" + tls("ns1") + strings.ReplaceAll(two, "ns1", "ns7"),
			[]string{"2: node.id: \"ns1\" is not one of cluster.nodes (ns7, ns2)"}},
		{"duplicate id and addresses", "[cluster]\n" + tls("ns1") + strings.ReplaceAll(strings.ReplaceAll(two, "ns2", "ns1"), "127.0.0.12", "127.0.0.11"),
			[]string{"11: cluster.nodes[1]: id \"ns1\" is listed twice", "11: cluster.nodes[1]: raft address 127.0.0.11:7000 is also", "11: cluster.nodes[1]: http address 127.0.0.11:8053 is also"}},
		{"id not a label", "[cluster]\n" + tls("ns1") + strings.Replace(two, "\"ns2\"", "\"ns 2\"", 1),
			[]string{"11: cluster.nodes[1]: id \"ns 2\" is not a plain name"}},
		{"unspecified raft address", "[cluster]\n" + tls("ns1") + strings.Replace(two, "127.0.0.12:7000", "0.0.0.0:7000", 1),
			[]string{"11: cluster.nodes[1]: raft address 0.0.0.0:7000: peers dial it"}},
		{"no voter", "[cluster]\n" + tls("ns1") + strings.ReplaceAll(two, " }", ", voter = false }"),
			[]string{"9: cluster.nodes: no voter"}},
		{"unknown node key", "[cluster]\n" + tls("ns1") + strings.Replace(two, "http =", "htp =", 1),
			[]string{"9:", "unknown key \"htp\""}},
		{"voter not a bool", "[cluster]\n" + tls("ns1") + strings.Replace(two, " }", ", voter = \"no\" }", 1),
			[]string{"9:", "voter must be true or false"}},
		{"bad raft address", "[cluster]\n" + tls("ns1") + strings.Replace(two, "127.0.0.12:7000", "ns2.example.net:7000", 1),
			[]string{"9:", "bad address \"ns2.example.net:7000\""}},
		{"bad http address", "[cluster]\n" + tls("ns1") + strings.Replace(two, "127.0.0.12:8053", "127.0.0.12", 1),
			[]string{"9:", "bad address \"127.0.0.12\": want host:port"}},
		{"listen on another port", "[cluster]\nlisten = \"127.0.0.11:7001\"\n" + tls("ns1") + two,
			[]string{"6: cluster.listen: port 7001 differs from this node's raft address 127.0.0.11:7000"}},
		{"listen on another address", "[cluster]\nlisten = \"127.0.0.12:7000\"\n" + tls("ns1") + two,
			[]string{"6: cluster.listen: 127.0.0.12:7000 is not this node's raft address"}},
		{"no tls", "[cluster]\n" + two,
			[]string{"5: cluster: ca, cert and key are required with more than one node"}},
		{"key missing", "[cluster]\nca = \"" + dir + "/certs/ca.pem\"\ncert = \"" + dir + "/certs/ns1.pem\"\n" + two,
			[]string{"5: cluster.key: missing: ca, cert and key go together"}},
		{"ca file missing", "[cluster]\nca = \"" + dir + "/certs/nope.pem\"\ncert = \"" + dir + "/certs/ns1.pem\"\nkey = \"" + dir + "/certs/ns1-key.pem\"\n" + two,
			[]string{"6: cluster.ca:", "no such file"}},
		{"ca not pem", "[cluster]\nca = \"" + dir + "/certs/ns1-key.pem\"\ncert = \"" + dir + "/certs/ns1.pem\"\nkey = \"" + dir + "/certs/ns1-key.pem\"\n" + two,
			[]string{"6: cluster.ca:", "holds no PEM certificate"}},
		{"key of another cert", "[cluster]\nca = \"" + dir + "/certs/ca.pem\"\ncert = \"" + dir + "/certs/ns1.pem\"\nkey = \"" + dir + "/certs/ns2-key.pem\"\n" + two,
			[]string{"7: cluster.cert:", "private key does not match public key"}},
		{"cert of another CA", "[cluster]\n" + tls("foreign") + two,
			[]string{"7: cluster.cert:", "is not a valid certificate of the cluster CA", "unknown authority"}},
		{"cert naming another node", "[cluster]\n" + tls("ns9") + two,
			[]string{"7: cluster.cert:", "does not name node \"ns1\" in a DNS SAN"}},
		{"peer settings without nodes", "[cluster]\nlisten = \"127.0.0.1:7000\"\nca = \"ca.pem\"\n",
			[]string{"6: cluster.listen: given without cluster.nodes", "7: cluster.ca: given without cluster.nodes"}},
		{"timing", "[cluster]\nvote_ttl = \"6s\"\nbeat_interval = \"6s\"\nheartbeat_timeout = \"2s\"\nelection_timeout = \"1s\"\nleader_lease_timeout = \"3s\"\nmax_clock_skew = \"10s\"\ncommit_timeout = \"0s\"\nsnapshot_threshold = 0\nhistory_limit = 0\n",
			[]string{"7: cluster.beat_interval: 6s is not shorter than vote_ttl (6s)", "9: cluster.election_timeout: 1s is shorter than heartbeat_timeout (2s)",
				"10: cluster.leader_lease_timeout: 3s is longer than heartbeat_timeout", "11: cluster.max_clock_skew: 10s is not shorter than vote_ttl",
				"12: cluster.commit_timeout: 0s is too short", "13: cluster.snapshot_threshold: 0", "14: cluster.history_limit: 0 is out of range"}},
		{"join without nodes", "[cluster]\njoin = true\n",
			[]string{"6: cluster.join: a node can only join a cluster of several nodes"}},
		{"vote ttl too short", "[cluster]\nvote_ttl = \"500ms\"\n",
			[]string{"6: cluster.vote_ttl: 500ms is too short"}},
		{"bare number timeout", "[cluster]\nwrite_timeout = 5\n",
			[]string{"6:", "no unit"}},
		{"min quorum above voters", "[cluster]\nmin_quorum = 3\n" + tls("ns1") + two,
			[]string{"6: cluster.min_quorum: 3 is more than the 2 configured voters"}},
		{"min quorum negative", "[cluster]\nmin_quorum = -1\n",
			[]string{"6: cluster.min_quorum: -1 is negative"}},
		{"unknown cluster key", "[cluster]\nvote_tl = \"5s\"\n",
			[]string{"6: cluster.vote_tl: unknown key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.src), "f.toml")
			checkErr(t, err, tc.want)
		})
	}
}

// checkErr fails unless err is config.Errors holding every want; a want that
// starts with a digit is a line number and gets "f.toml:" in front.
func checkErr(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if w[0] >= '0' && w[0] <= '9' {
			w = "f.toml:" + w
		}
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error\n%v\ndoes not contain %q", err, w)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Errorf("error %T is not a *config.Error", err)
	}
}
