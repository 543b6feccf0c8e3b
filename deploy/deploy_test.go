package deploy_test

import (
	"bufio"
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/geodnsd/geodnsd/cluster"
	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/deploy"
)

// The embedded tree holds the demo. Every example is also parsed, loaded and
// served by node's TestExamplesServe, with the options geodnsd derives from it.
func TestExamplesEmbedded(t *testing.T) {
	ex := deploy.Examples()
	if _, err := fs.Stat(ex, deploy.DemoConfig); err != nil {
		t.Errorf("demo config: %v", err)
	}
	zones, err := fs.Glob(ex, "demo/zones/*.zone")
	if err != nil || len(zones) == 0 {
		t.Errorf("demo zones: %v %v", zones, err)
	}
}

// TestExamplesLoad loads every example configuration from disk, as an
// operator would (relative paths resolve next to the file), and wants no
// error and no warning: an example teaches what to write.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("examples/*/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		if filepath.Dir(f) == sixDir {
			continue // its certificates and GeoIP2 database live on the nodes: TestSixLoad provides them
		}
		t.Run(f, func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) > 0 {
				t.Errorf("warnings:\n%s", strings.Join(c.Warnings, "\n"))
			}
		})
	}
}

// TestDemoShowsEveryKey: the demo configuration is the reference for the
// schema (README links to it), so every key of config.Config appears in it,
// written or commented, in its section. Check-type keys are the exception:
// config/testdata/health.toml shows each check type.
func TestDemoShowsEveryKey(t *testing.T) {
	src, err := fs.ReadFile(deploy.Examples(), deploy.DemoConfig)
	if err != nil {
		t.Fatal(err)
	}
	shown := shownKeys(string(src))
	var want []string
	schemaKeys(reflect.TypeOf(config.Config{}), "", &want)
	// Keys of inline tables, which decode by hand (UnmarshalTOML).
	want = append(want, "sites.*.endpoints.name", "sites.*.endpoints.address", "sites.*.endpoints.probe",
		"cluster.nodes.id", "cluster.nodes.raft", "cluster.nodes.http", "cluster.nodes.voter")
	sort.Strings(want)
	for _, k := range want {
		if strings.HasPrefix(k, "sites.*.checks.") || strings.HasPrefix(k, "sites.*.sync.") {
			continue
		}
		if !shown[k] {
			t.Errorf("%s: key %q is not shown (written or commented) in its section", deploy.DemoConfig, k)
		}
	}
	if len(want) < 60 {
		t.Errorf("only %d schema keys found: the reflection walk is broken", len(want))
	}
}

var (
	unmarshaler     = reflect.TypeOf((*toml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// schemaKeys lists the key paths of t's toml fields: maps of tables as
// NAME.*, arrays of tables without an index.
func schemaKeys(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String {
			vt := ft.Elem()
			for vt.Kind() == reflect.Pointer {
				vt = vt.Elem()
			}
			if vt.Kind() == reflect.Struct {
				schemaKeys(vt, key+".*.", out)
				continue
			}
		}
		leaf := ft.Kind() != reflect.Struct || reflect.PointerTo(ft).Implements(unmarshaler) || reflect.PointerTo(ft).Implements(textUnmarshaler)
		if leaf {
			*out = append(*out, key)
			continue
		}
		schemaKeys(ft, key+".", out)
	}
}

var (
	headerRE = regexp.MustCompile(`^\[\[?([a-z0-9_.-]+)\]\]?`)
	keyRE    = regexp.MustCompile(`^([a-z0-9_]+)\s*=`)
	inlineRE = regexp.MustCompile(`[{,]\s*([a-z0-9_]+)\s*=`)
	mapNames = regexp.MustCompile(`^(sites|services)\.[a-z0-9-]+`)
)

// shownKeys reads TOML text, commented lines included, and returns the key
// paths written in it, with site and service names as *.
func shownKeys(src string) map[string]bool {
	shown := map[string]bool{}
	table := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(sc.Text()), "#"))
		if m := headerRE.FindStringSubmatch(line); m != nil {
			table = mapNames.ReplaceAllString(m[1], "$1.*")
			continue
		}
		prefix := ""
		if table != "" {
			prefix = table + "."
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			shown[prefix+m[1]] = true
			if m[1] == "nodes" || m[1] == "endpoints" || m[1] == "tsig_keys" {
				table2 := prefix + m[1]
				for _, im := range inlineRE.FindAllStringSubmatch(line, -1) {
					shown[table2+"."+im[1]] = true
				}
			}
			continue
		}
		// Continuation lines of a multi-line array of inline tables.
		parent := map[string]string{"cluster": "cluster.nodes", "sites.*": "sites.*.endpoints"}[table]
		if parent != "" && strings.HasPrefix(line, "{") {
			for _, im := range inlineRE.FindAllStringSubmatch(line, -1) {
				shown[parent+"."+im[1]] = true
			}
		}
	}
	return shown
}

// sixDir is the six-node example deployment: ns1.toml … ns6.toml and zones/.
var sixDir = filepath.Join("examples", "six")

// sixCopy copies the six-node example into a temporary directory laid out
// as /etc/geodnsd is on a node: the six files, zones/, certs/ (a cluster CA
// and a certificate per node, made by cluster.WritePKI for the nodes and
// raft addresses that [cluster] nodes lists) and GeoLite2-City.mmdb (the
// lab's GeoIP2 test database under the name the example uses). It returns
// the directory.
func sixCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := filepath.Glob(filepath.Join(sixDir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	zoneFiles, err := filepath.Glob(filepath.Join(sixDir, "zones", "*.zone"))
	if err != nil || len(zoneFiles) == 0 {
		t.Fatalf("six: no zone files: %v", err)
	}
	for _, f := range append(files, zoneFiles...) {
		rel, _ := filepath.Rel(sixDir, f)
		copyFile(f, filepath.Join(dir, rel))
	}
	copyFile(filepath.Join("lab", "GeoIP2-City-Test.mmdb"), filepath.Join(dir, "GeoLite2-City.mmdb"))

	// The members, as [cluster] nodes lists them (read without validation:
	// validation wants the certificates this makes).
	var raw struct {
		Cluster struct {
			Nodes []struct{ ID, Raft string }
		}
	}
	if _, err := toml.DecodeFile(filepath.Join(sixDir, "ns1.toml"), &raw); err != nil {
		t.Fatal(err)
	}
	var members []cluster.Member
	for _, n := range raw.Cluster.Nodes {
		ap, err := netip.ParseAddrPort(n.Raft)
		if err != nil {
			t.Fatalf("ns1.toml: node %s: %v", n.ID, err)
		}
		members = append(members, cluster.Member{ID: n.ID, Raft: ap, Voter: true})
	}
	if _, err := cluster.WritePKI(filepath.Join(dir, "certs"), members, time.Now()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// glueRE matches the example zone's nameserver address records.
var glueRE = regexp.MustCompile(`(?m)^(ns[0-9]+)\s+IN\s+(A|AAAA)\s+(\S+)`)

// TestSixLoad loads each node's file of the six-node example as geodnsd
// would on that node (config.Load, certificates and database present) and
// wants: no error, no warning; node i is ns<i> with its own certificate;
// all six report one config digest over the same zone files (so status
// shows no mismatch); six voters; every node listens for DNS on the
// addresses that the zone's glue gives it, and its raft address is its
// own entry in [cluster] nodes; the MX target is a name of the cas service.
func TestSixLoad(t *testing.T) {
	dir := sixCopy(t)
	zoneFiles, err := filepath.Glob(filepath.Join(dir, "zones", "*.zone"))
	if err != nil {
		t.Fatal(err)
	}
	var zoneData [][]byte
	for _, f := range zoneFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		zoneData = append(zoneData, b)
	}
	zone := string(zoneData[0])
	glue := map[string][]string{}
	for _, m := range glueRE.FindAllStringSubmatch(zone, -1) {
		glue[m[1]] = append(glue[m[1]], m[3])
	}
	if !strings.Contains(zone, "IN MX   10 mail.example.com.") {
		t.Errorf("the zone's MX is not mail.example.com")
	}

	digests := map[string][]string{}
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("ns%d", i)
		c, err := config.Load(filepath.Join(dir, id+".toml"))
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if len(c.Warnings) > 0 {
			t.Errorf("%s warnings:\n%s", id, strings.Join(c.Warnings, "\n"))
		}
		if c.Node.ID != id {
			t.Errorf("%s.toml: node.id %q", id, c.Node.ID)
		}
		if c.Node.StateDir != "/var/lib/geodnsd" {
			t.Errorf("%s: state_dir %q, want the systemd StateDirectory /var/lib/geodnsd", id, c.Node.StateDir)
		}
		if want := filepath.Join(dir, "certs", id+".pem"); c.Cluster.Cert != want {
			t.Errorf("%s: cluster.cert %q, want %q", id, c.Cluster.Cert, want)
		}
		d := c.Digest(zoneData...)
		digests[d] = append(digests[d], id)

		voters := 0
		for _, n := range c.Cluster.Nodes {
			if n.Voter {
				voters++
			}
			if n.ID == id && n.Raft.Addr() != c.Cluster.Listen.Addr() {
				t.Errorf("%s: listens for raft on %s, but [cluster] nodes says %s", id, c.Cluster.Listen, n.Raft)
			}
		}
		if voters != 6 {
			t.Errorf("%s: %d voters, want 6", id, voters)
		}
		var listen []string
		for _, a := range c.DNS.Listen {
			if a.Port() != 53 {
				t.Errorf("%s: DNS on port %d, want 53", id, a.Port())
			}
			listen = append(listen, a.Addr().String())
		}
		slices.Sort(listen)
		want := slices.Clone(glue[id])
		slices.Sort(want)
		if len(want) == 0 || !slices.Equal(listen, want) {
			t.Errorf("%s: DNS listens on %v, the zone's glue says %v", id, listen, want)
		}
		cas := c.Services["cas"]
		if cas == nil || !slices.Contains(cas.Names, config.FQDN("mail.example.com.")) {
			t.Errorf("%s: service cas does not carry the MX target mail.example.com", id)
		}
	}
	if len(digests) != 1 {
		t.Errorf("the six nodes report %d different config digests: %v", len(digests), digests)
	}
	if len(glue) != 6 {
		t.Errorf("glue for %d nameservers, want 6: %v", len(glue), glue)
	}
}

// unitKeys reads a systemd unit file into section.Key -> values, in order.
func unitKeys(src string) map[string][]string {
	keys := map[string][]string{}
	section := ""
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if ok {
				keys[section+"."+k] = append(keys[section+"."+k], v)
			}
		}
	}
	return keys
}

const (
	unitFile   = "systemd/geodnsd.service"
	unitBinary = "/usr/local/bin/geodnsd"
	unitConfig = "/etc/geodnsd/geodnsd.toml"
)

// TestSystemdUnitHardening pins the unit's hardening: each line below is a
// promise docs/runbook.md makes (a node runs with CAP_NET_BIND_SERVICE and
// nothing else, sees a read-only system, writes only its state directory).
func TestSystemdUnitHardening(t *testing.T) {
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	keys := unitKeys(string(src))
	for k, want := range map[string]string{
		"Service.User":                    "geodnsd",
		"Service.StateDirectory":          "geodnsd",
		"Service.ConfigurationDirectory":  "geodnsd",
		"Service.AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"Service.CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"Service.ProtectSystem":           "strict",
		"Service.ProtectHome":             "yes",
		"Service.PrivateTmp":              "yes",
		"Service.PrivateDevices":          "yes",
		"Service.NoNewPrivileges":         "yes",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
		"Service.RestrictNamespaces":      "yes",
		"Service.MemoryDenyWriteExecute":  "yes",
		"Service.LockPersonality":         "yes",
		"Service.Restart":                 "on-failure",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.ExecStart":               unitBinary + " -config " + unitConfig,
		"Service.ExecStartPre":            unitBinary + " -config " + unitConfig + " -check-config",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s: %s = %q, want %q", unitFile, k, got, want)
		}
	}
	if got := keys["Service.SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("%s: SystemCallFilter = %q, want @system-service first", unitFile, got)
	}
	// The user the unit names is the one the sysusers file creates.
	sys, err := os.ReadFile("systemd/geodnsd.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^u geodnsd - `).Match(sys) {
		t.Errorf("systemd/geodnsd.sysusers does not create the user geodnsd:\n%s", sys)
	}
}

// TestSystemdUnitVerify runs `systemd-analyze verify` on the unit with its
// binary and config paths pointed at a geodnsd built from this tree and at
// node ns1 of the six-node example (verify wants ExecStart's binary to
// exist; a real binary also lets the test run the unit's own ExecStartPre
// line: -check-config must pass on the example and exit 2 on a broken
// copy). It logs the `systemd-analyze security` exposure score and fails
// above 2.5 (the unit scores 1.6 with systemd 252).
func TestSystemdUnitVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd; .ci/run installs it)")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "geodnsd")
	build := exec.Command(goTool, "build", "-o", bin, "github.com/geodnsd/geodnsd/cmd/geodnsd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	etc := sixCopy(t)
	conf := filepath.Join(etc, "ns1.toml")

	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.NewReplacer(unitBinary, bin, unitConfig, conf).Replace(string(src))
	unitPath := filepath.Join(tmp, "geodnsd.service")
	if err := os.WriteFile(unitPath, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unitPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	out, err = exec.Command(analyze, "security", "--offline=yes", unitPath).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for geodnsd.service: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	} else {
		t.Logf("systemd-analyze security: exposure %s %s (0 best, 10 worst)", m[1], m[2])
		if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.5 {
			t.Errorf("exposure %s: the unit lost hardening\n%s", m[1], out)
		}
	}

	// The unit's ExecStartPre and ExecStart lines, as systemd splits them.
	keys := unitKeys(unit)
	pre := strings.Fields(keys["Service.ExecStartPre"][0])
	cmd := exec.Command(pre[0], pre[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ExecStartPre %q on the six-node example's ns1: %v\n%s", pre, err, out)
	}
	broken := filepath.Join(etc, "ns1.toml")
	b, _ := os.ReadFile(broken)
	if err := os.WriteFile(broken, append(b, "\n[services.cas]\nttl = \"30\"\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(pre[0], pre[1:]...)
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "ns1.toml") {
		t.Errorf("ExecStartPre on a broken config: %v, want exit 2 naming the file\n%s", err, out)
	}
}

// TestAlertRules runs promtool over the alert rules: `check rules` (syntax,
// expressions, templates) and `test rules` (geodnsd.rules.test.yml: every
// alert fires when it must and stays quiet when it must not). It also wants
// every geodnsd_ metric the rules name to be one a node exports (the names
// are listed in the test below from the sources that register them).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
	}
	for _, args := range [][]string{
		{"check", "rules", "geodnsd.rules.yml"},
		{"test", "rules", "geodnsd.rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "alerts"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	src, err := os.ReadFile("alerts/geodnsd.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range []string{"../web/viewmetrics.go", "../cluster/metrics.go", "../zones/store.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		prefix := "geodnsd_failover_"
		if strings.Contains(f, "cluster") {
			prefix = "geodnsd_cluster_"
		} else if strings.Contains(f, "zones") {
			prefix = "geodnsd_zones_"
		}
		// d("route_condition", ...), g("has_quorum", ...), Name: "load_errors"
		for _, m := range regexp.MustCompile(`(?:\b[dg]\(|Name:\s*)"([a-z_]+)"`).FindAllSubmatch(b, -1) {
			exported[prefix+string(m[1])] = true
		}
	}
	var used []string
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			used = append(used, regexp.MustCompile(`\bgeodnsd_[a-z_]+`).FindAllString(line, -1)...)
		}
	}
	if len(used) < 10 {
		t.Fatalf("only %d metric references found in the rules", len(used))
	}
	for _, name := range used {
		if !exported[name] {
			t.Errorf("the rules use %s, which no node exports (exported: %v)", name, slices.Sorted(maps.Keys(exported)))
		}
	}
}
