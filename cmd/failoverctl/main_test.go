package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web"
	"github.com/geodnsd/geodnsd/web/api"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

var nodes6 = []string{"ns1", "ns2", "ns3", "ns4", "ns5", "ns6"}

const (
	opToken   = "op-secret-alice"
	readToken = "read-secret-bob"
)

func hashHex(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

func spec() failover.Spec {
	return failover.Spec{
		Sites: []failover.SiteSpec{
			{Name: "dallas", SyncCheck: "replication", Endpoints: []failover.Endpoint{
				{Name: "dal1", Address: "192.0.2.10"}, {Name: "dal2", Address: "192.0.2.11"}}},
			{Name: "losangeles", SyncCheck: "replication", Endpoints: []failover.Endpoint{
				{Name: "lax1", Address: "198.51.100.10"}}},
		},
		Services: []failover.ServiceSpec{{
			Name:   "cas",
			Names:  []string{"cas.example.com."},
			Routes: []failover.RouteSpec{{Name: "default", Sites: []string{"dallas", "losangeles"}}},
			Policy: failover.Policy{Failover: failover.Manual, Failback: failover.Manual, DownFor: 30 * time.Second},
		}},
		Nodes:   nodes6,
		VoteTTL: time.Hour,
	}
}

// fakeNode is the real web handler over an in-memory failover state, on a
// loopback server.
type fakeNode struct {
	t   *testing.T
	mem *web.Memory
	url string
}

func newNode(t *testing.T, tokens ...web.Token) *fakeNode {
	t.Helper()
	s, err := failover.New(spec(), t0)
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{t: t, mem: web.NewMemory(s, "ns1")}
	n.mem.SetTTL("cas", 30*time.Second)
	tokens = append(tokens, web.Token{Name: "alice", SHA256: hashHex(opToken), Role: web.RoleOperator},
		web.Token{Name: "bob", SHA256: hashHex(readToken), Role: web.RoleRead})
	// Commands are stamped by a fixed clock: the state's votes never expire
	// whatever the day the test runs.
	now := func() time.Time { return t0.Add(time.Minute) }
	h, err := web.Handler(web.Options{Backend: n.mem, Node: "ns1", Tokens: tokens, PublicRate: -1, AdminRate: -1, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	n.url = srv.URL
	for _, id := range nodes6 {
		n.apply(failover.Beat{Time: t0, Node: id, Digest: "sha256:abcd"})
	}
	n.site("dallas", true, t0)
	n.site("losangeles", true, t0)
	n.sync("dallas", true, "lag=0s", t0)
	n.sync("losangeles", true, "lag=0s", t0)
	return n
}

func (n *fakeNode) apply(e failover.Event) {
	n.t.Helper()
	if _, err := n.mem.Apply(e); err != nil {
		n.t.Fatal(err)
	}
}

func (n *fakeNode) site(site string, up bool, at time.Time) {
	n.t.Helper()
	reason := "200 OK"
	if !up {
		reason = "connect: connection refused"
	}
	for _, ep := range map[string][]string{"dallas": {"dal1", "dal2"}, "losangeles": {"lax1"}}[site] {
		for _, id := range nodes6 {
			n.apply(failover.Observation{Time: at, Node: id, Site: site, Endpoint: ep, Check: "https", Up: up, Reason: reason})
		}
	}
}

func (n *fakeNode) sync(site string, in bool, reason string, at time.Time) {
	n.t.Helper()
	for _, id := range nodes6 {
		n.apply(failover.SyncVerdict{Time: at, Node: id, Site: site, Check: "replication", InSync: in, Reason: reason})
	}
}

// ctl runs failoverctl against the node with alice's token unless the
// arguments give another.
func (n *fakeNode) ctl(args ...string) (int, string, string) {
	n.t.Helper()
	full := []string{"--server", n.url}
	if !slices.Contains(args, "--token") {
		full = append(full, "--token", opToken)
	}
	return ctl(n.t, append(full, args...)...)
}

func ctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func wantRe(t *testing.T, what, s string, res ...string) {
	t.Helper()
	for _, re := range res {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("%s does not match %s:\n%s", what, re, s)
		}
	}
}

func TestStatus(t *testing.T) {
	t.Setenv("GEODNSD_TOKEN", "")
	n := newNode(t)
	code, out, errs := ctl(t, "--server", n.url, "status") // public: no token
	if code != 0 {
		t.Fatalf("status = %d: %s", code, errs)
	}
	wantRe(t, "status", out,
		`(?m)^node ns1  leader ns1  quorum yes  frozen no  index \d+`,
		`(?m)^SERVICE\s+ROUTE\s+ACTIVE\s+CONDITION\s+EPOCH\s+SINCE\s+ANSWER\s+REASON$`,
		`(?m)^cas\s+default\s+dallas\s+normal\s+0\s+2026-11-30T12:00:00Z\s+192\.0\.2\.10 192\.0\.2\.11\s+initial$`,
		`(?m)^dallas\s+up\s+in_sync\s+active\s+dal1 up 6/0, dal2 up 6/0$`,
		`(?m)^ns1\s+yes\s+leader\s+2026-11-30T12:00:00Z\s+\d+\s+sha256:abcd$`,
		`(?m)^ns2\s+yes\s+-\s+2026-11-30T12:00:00Z\s+\?\s+sha256:abcd$`)
	code, out, _ = ctl(t, "--server", n.url, "status", "--json")
	var s api.Status
	if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
		t.Fatalf("status --json = %d, %v:\n%s", code, err, out)
	}
	if s.Schema != 1 || s.Services[0].Routes[0].Active != "dallas" || s.Services[0].TTL != api.Duration(30*time.Second) {
		t.Errorf("status --json = %+v", s)
	}
}

// TestCommands runs every command, in human and JSON form, and checks its
// output, exit code and effect.
func TestCommands(t *testing.T) {
	n := newNode(t)
	cases := []struct {
		args []string
		want []string // regexps on stdout
	}{
		{[]string{"freeze", "--reason", "change window"}, []string{`(?m)^freeze: done by alice at index \d+, applied by the leader$`, `(?m)^  freeze: thawed → frozen: change window$`}},
		{[]string{"thaw"}, []string{`(?m)^thaw: done by alice`}},
		{[]string{"mode", "cas", "auto", "--failback", "auto"}, []string{`(?m)^mode cas auto --failback auto: done by alice`}},
		{[]string{"mode", "cas", "manual", "--failback=manual"}, []string{`(?m)^mode cas manual --failback manual: done`}},
		{[]string{"failover", "cas", "--to", "losangeles", "--reason", "dallas flooded"}, []string{`(?m)^  cas/default: dallas → losangeles \(epoch 1\): dallas flooded$`}},
		{[]string{"promote", "dallas", "--wait"}, []string{`applied by every reachable node`, `(?m)^  cas/default: losangeles → dallas \(epoch 2\)`}},
		{[]string{"drain", "dallas"}, []string{`(?m)^  cas/default: dallas → losangeles \(epoch 3\)`}},
		{[]string{"undrain", "dallas"}, []string{`(?m)^undrain dallas: done`}},
		{[]string{"mark-synced", "dallas"}, []string{`(?m)^mark-synced dallas: done`}},
	}
	for _, c := range cases {
		code, out, errs := n.ctl(c.args...)
		if code != 0 {
			t.Errorf("%v = %d: %s", c.args, code, errs)
			continue
		}
		wantRe(t, strings.Join(c.args, " "), out, c.want...)
	}
	st := n.mem.View().State.Status()
	if a := st.Services[0].Routes[0]; a.Active != "losangeles" || st.Sites[0].Admin != failover.AdminActive || st.Frozen {
		t.Errorf("after the commands: %+v, dallas %s", a, st.Sites[0].Admin)
	}
	// --json: a CommandResult a script can read.
	code, out, _ := n.ctl("--json", "promote", "dallas")
	var r api.CommandResult
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Command != "promote dallas" || r.Actor != "alice" ||
		len(r.Entries) != 1 || r.Entries[0].To != "dallas" || r.Index != n.mem.View().Index {
		t.Errorf("promote --json = %d %v %+v", code, err, r)
	}

	code, out, _ = n.ctl("history", "-n", "3")
	wantRe(t, "history", out, `(?m)^SEQ\s+TIME\s+KIND\s+WHAT\s+ACTOR\s+CHANGE$`,
		`(?m)^\d+\s+2026-\S+\s+command\s+promote\s+alice\s+cas/default: losangeles → dallas \(epoch 4\): operator: promote dallas$`)
	if lines := strings.Count(out, "\n"); code != 0 || lines != 4 {
		t.Errorf("history -n 3 = %d, %d lines", code, lines)
	}
	code, out, _ = n.ctl("--json", "history", "-n", "200")
	var h []api.HistoryEntry
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || len(h) != len(n.mem.View().State.Status().History) || h[0].What != "promote" {
		t.Errorf("history --json = %d %v, %d entries", code, err, len(h))
	}
	code, out, _ = n.ctl("nodes")
	wantRe(t, "nodes", out, `(?m)^leader ns1  quorum yes  config mismatch no$`, `(?m)^ns6\s+yes\s+-\s+`)
	code, out, _ = n.ctl("nodes", "--json")
	var nr api.NodesReply
	if err := json.Unmarshal([]byte(out), &nr); code != 0 || err != nil || len(nr.Nodes) != 6 || nr.Leader != "ns1" {
		t.Errorf("nodes --json = %d %v %+v", code, err, nr)
	}
}

// TestRefusedPromote: a refused promote exits 1 naming the sync check and
// its value; --force --reason goes through and is audited.
func TestRefusedPromote(t *testing.T) {
	n := newNode(t)
	n.site("dallas", false, t0.Add(time.Minute))
	if code, _, errs := n.ctl("failover", "cas", "--to", "losangeles"); code != 0 {
		t.Fatal(errs)
	}
	n.site("dallas", true, t0.Add(2*time.Minute))
	n.sync("dallas", false, "copy_queue_length=12", t0.Add(2*time.Minute))

	code, out, errs := n.ctl("promote", "dallas")
	if code != 1 || out != "" || strings.Count(errs, "\n") != 1 {
		t.Fatalf("refused promote = %d, stdout %q, stderr %q", code, out, errs)
	}
	wantRe(t, "refusal", errs, `^failoverctl: refused: promote dallas refused: sync check "replication" reports not_in_sync \(copy_queue_length=12\).* \[replication: not_in_sync: copy_queue_length=12\]\n$`)
	code, out, _ = n.ctl("promote", "dallas", "--json")
	var b api.ErrorBody
	if err := json.Unmarshal([]byte(out), &b); code != 1 || err != nil || b.Error != "refused" || b.Check != "replication" ||
		b.Observed != "not_in_sync: copy_queue_length=12" {
		t.Errorf("refused --json = %d %v %+v", code, err, b)
	}

	code, out, errs = n.ctl("promote", "dallas", "--force", "--reason", "replica checked by hand")
	if code != 0 {
		t.Fatalf("forced promote = %d %s", code, errs)
	}
	wantRe(t, "forced", out, `cas/default: losangeles → dallas \(epoch 2\) FORCED: replica checked by hand`)
	_, out, _ = n.ctl("--json", "history", "-n", "1")
	var h []api.HistoryEntry
	json.Unmarshal([]byte(out), &h)
	if len(h) != 1 || !h[0].Forced || h[0].Actor != "alice" || h[0].Reason != "replica checked by hand" || h[0].What != "promote" {
		t.Errorf("audit of the forced promote = %+v", h)
	}
}

func TestAuthExit(t *testing.T) {
	t.Setenv("GEODNSD_TOKEN", "")
	n := newNode(t)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--token", "wrong", "freeze"}, 4},
		{[]string{"--token", "", "freeze"}, 4},
		{[]string{"--token", "", "history"}, 4},
		{[]string{"--token", readToken, "promote", "dallas"}, 4},
		{[]string{"--token", readToken, "history"}, 0},
		{[]string{"--token", readToken, "nodes"}, 0},
	} {
		code, _, errs := n.ctl(c.args...)
		if code != c.want {
			t.Errorf("%v = %d (%s), want %d", c.args, code, errs, c.want)
		}
	}
	_, _, errs := n.ctl("--token", "wrong", "thaw")
	wantRe(t, "401", errs, `unauthorized, HTTP 401`)
	t.Setenv("GEODNSD_TOKEN", opToken)
	if code, _, errs := ctl(t, "--server", n.url, "thaw"); code != 0 {
		t.Errorf("GEODNSD_TOKEN not used: %d %s", code, errs)
	}
}

func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return "http://" + a
}

func TestUnavailable(t *testing.T) {
	n := newNode(t)
	dead := deadURL(t)
	code, _, errs := ctl(t, "--server", dead, "--token", opToken, "freeze")
	if code != 3 || !strings.Contains(errs, "no server reachable") {
		t.Errorf("unreachable = %d %s", code, errs)
	}
	code, _, errs = ctl(t, "--server", dead+","+n.url, "--token", opToken, "freeze")
	if code != 0 {
		t.Errorf("second server = %d %s", code, errs)
	}
	code, out, _ := ctl(t, "--server", dead, "--json", "status")
	var b api.ErrorBody
	if err := json.Unmarshal([]byte(out), &b); code != 3 || err != nil || b.Error != "no_quorum" {
		t.Errorf("unreachable --json = %d %v %q", code, err, out)
	}
	n.mem.SetQuorum(false)
	code, _, errs = n.ctl("thaw")
	if code != 3 || !strings.Contains(errs, "no quorum") {
		t.Errorf("no quorum = %d %s", code, errs)
	}
	// A node without quorum still shows its last state.
	code, out, _ = n.ctl("status")
	wantRe(t, "status without quorum", out, `leader none  quorum no`, `(?m)^NO QUORUM`)
	if code != 0 {
		t.Errorf("status without quorum = %d", code)
	}
}

func TestUsage(t *testing.T) {
	n := newNode(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"reboot"}, `unknown command "reboot"`},
		{[]string{"promote"}, "promote takes 1 argument"},
		{[]string{"promote", "a", "b"}, "promote takes 1 argument"},
		{[]string{"failover", "cas"}, "needs --to SITE"},
		{[]string{"promote", "dallas", "--force"}, "--force needs --reason"},
		{[]string{"history", "--to", "x"}, "history does not take --to"},
		{[]string{"undrain", "dallas", "--force", "--reason", "x"}, "undrain does not take --force"},
		{[]string{"mode", "cas", "sometimes"}, `"sometimes" is not auto or manual`},
		{[]string{"mode", "cas", "auto", "--failback", "never"}, `--failback "never"`},
		{[]string{"--bogus", "status"}, "flag provided but not defined: -bogus"},
		{[]string{"history", "-n", "0"}, "-n 0"},
		{[]string{"promote", "paris"}, "paris"},                                // the server's 422
		{[]string{"failover", "cas", "--to", "dallas", "--route", "eu"}, "eu"}, // unknown route
		{[]string{"token", "--role", "admin"}, `--role "admin"`},
	} {
		code, _, errs := n.ctl(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v = %d %q, want 2 naming %q", c.args, code, errs, c.want)
		}
	}
	if code, out, _ := ctl(t, "help"); code != 0 || !strings.Contains(out, "usage: failoverctl") {
		t.Errorf("help = %d", code)
	}
	if code, out, _ := ctl(t, "-h"); code != 0 || !strings.Contains(out, "mark-synced SITE") {
		t.Errorf("-h = %d", code)
	}
	// "--" ends the flags: a site may not be named like a flag, but it
	// reaches the server as written.
	if code, _, errs := n.ctl("promote", "--", "--wait"); code != 2 || !strings.Contains(errs, "--wait") {
		t.Errorf("promote -- --wait = %d %s", code, errs)
	}
}

// TestToken: the token and its hash agree, and a node configured with the
// hash accepts the token as its actor.
func TestToken(t *testing.T) {
	code, out, _ := ctl(t, "token", "--name", "carol", "--role", "read")
	m := regexp.MustCompile(`(?m)^token:  (\S+)\nsha256: ([0-9a-f]{64})\n`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("token = %d:\n%s", code, out)
	}
	if hashHex(m[1]) != m[2] || !strings.Contains(out, "[[http.tokens]]\nname = \"carol\"\nsha256 = \""+m[2]+"\"\nrole = \"read\"\n") {
		t.Errorf("token output:\n%s", out)
	}
	code, out, _ = ctl(t, "token", "--json")
	var tk struct{ Token, SHA256, Name, Role string }
	if err := json.Unmarshal([]byte(out), &tk); code != 0 || err != nil || hashHex(tk.Token) != tk.SHA256 || tk.Role != "operator" || len(tk.Token) < 40 {
		t.Fatalf("token --json = %d %v %+v", code, err, tk)
	}
	_, out2, _ := ctl(t, "token", "--json")
	if out2 == out {
		t.Error("two tokens are equal")
	}
	n := newNode(t, web.Token{Name: "dave", SHA256: tk.SHA256, Role: web.RoleOperator})
	code, out, errs := n.ctl("--token", tk.Token, "freeze")
	if code != 0 || !strings.Contains(out, "done by dave") {
		t.Errorf("new token: %d %s %s", code, out, errs)
	}
}

func TestValidate(t *testing.T) {
	code, out, errs := ctl(t, "validate", "../../deploy/examples/demo/geodnsd.toml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("validate demo = %d %s %s", code, out, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[dns]\nlisten = [\"127.0.0.1:5353\"]\ntcp_idle_timeout = 5\n"), 0o644)
	code, _, errs = ctl(t, "validate", bad)
	if code != 2 || !strings.Contains(errs, "bad.toml:3: dns.tcp_idle_timeout") {
		t.Errorf("validate bad = %d %s", code, errs)
	}
	code, out, _ = ctl(t, "--json", "validate", bad)
	var b api.ErrorBody
	if err := json.Unmarshal([]byte(out), &b); code != 2 || err != nil || !strings.Contains(b.Message, "tcp_idle_timeout") {
		t.Errorf("validate --json = %d %v %s", code, err, out)
	}
	// The same check as geodnsd -check-config: zone data too.
	dir := t.TempDir()
	cfg, err := os.ReadFile("../../deploy/examples/demo/geodnsd.toml")
	if err != nil {
		t.Fatal(err)
	}
	zone, err := os.ReadFile("../../deploy/examples/demo/zones/example.com.zone")
	if err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "zones"), 0o755)
	os.WriteFile(filepath.Join(dir, "geodnsd.toml"), cfg, 0o644)
	os.WriteFile(filepath.Join(dir, "zones", "example.com.zone"), zone, 0o644)
	code, out, errs = ctl(t, "validate", filepath.Join(dir, "geodnsd.toml"))
	if code != 0 || !strings.Contains(out, "zone example.com. serial") {
		t.Errorf("validate copy of the demo = %d %q %s", code, out, errs)
	}
	broken := append(zone, []byte("\nbroken IN A 999.1.1.1\n")...)
	os.WriteFile(filepath.Join(dir, "zones", "example.com.zone"), broken, 0o644)
	code, _, errs = ctl(t, "validate", filepath.Join(dir, "geodnsd.toml"))
	if code != 2 || !strings.Contains(errs, "example.com.zone") {
		t.Errorf("validate with a broken zone = %d %s", code, errs)
	}

	code, _, errs = ctl(t, "validate", filepath.Join(t.TempDir(), "missing.toml"))
	if code != 2 || !strings.Contains(errs, "missing.toml") {
		t.Errorf("validate missing = %d %s", code, errs)
	}
}
