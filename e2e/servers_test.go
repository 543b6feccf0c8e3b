package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeID is the node id of geodnsd and the identity/NSID of the peers.
const nodeID = "ns1"

// readyDeadline bounds how long a server may take to answer every zone.
const readyDeadline = 30 * time.Second

// server is one running nameserver under test.
type server struct {
	name string
	v4   string // 127.0.0.1:port
	v6   string // [::1]:port, "" when not listening on IPv6
	proc *proc
}

func (s *server) addr(family string) string {
	if family == "6" {
		return s.v6
	}
	return s.v4
}

// requireTool fails the test (never skips) when a peer is not installed.
func requireTool(t *testing.T, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			if _, err2 := os.Stat(filepath.Join(dir, bin)); err2 == nil {
				return filepath.Join(dir, bin)
			}
		}
		t.Fatalf("%s not found: install %s (apt-get install -y %s)", bin, pkg, pkg)
	}
	return p
}

// startNSD starts NSD in the foreground (-d) on loopback with the corpus
// zones, configured to answer as geodnsd's policy says (see README.md).
func startNSD(t *testing.T, name string, withV6 bool) *server {
	t.Helper()
	dir := t.TempDir()
	zonesDir := copyZones(t, dir)
	var zones strings.Builder
	for _, f := range zoneFiles(t) {
		fmt.Fprintf(&zones, "zone:\n  name: %s\n  zonefile: %s\n", strings.TrimSuffix(f, ".zone"), f)
	}
	return runNSD(t, name, dir, zonesDir, withV6, 0, zones.String())
}

// runNSD writes NSD's configuration (the server options of README.md, then
// zones, the zone clauses) into dir, checks it and starts NSD on port (0:
// a free one), waiting until every corpus zone answers.
func runNSD(t *testing.T, name, dir, zonesDir string, withV6 bool, port int, zones string) *server {
	t.Helper()
	nsd := requireTool(t, "nsd", "nsd")
	checkconf := requireTool(t, "nsd-checkconf", "nsd")
	if port == 0 {
		port = freePort(t, withV6)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n")
	fmt.Fprintf(&b, "  ip-address: 127.0.0.1\n")
	if withV6 {
		fmt.Fprintf(&b, "  ip-address: ::1\n")
	} else {
		fmt.Fprintf(&b, "  do-ip6: no\n")
	}
	for _, kv := range [][2]string{
		{"port", strconv.Itoa(port)},
		{"server-count", "1"},
		{"reuseport", "no"},
		{"username", `""`},
		{"chroot", `""`},
		{"zonesdir", strconv.Quote(zonesDir)},
		{"database", `""`},
		{"zonelistfile", strconv.Quote(filepath.Join(dir, "zone.list"))},
		{"xfrdfile", strconv.Quote(filepath.Join(dir, "xfrd.state"))},
		{"xfrdir", strconv.Quote(dir)},
		{"pidfile", strconv.Quote(filepath.Join(dir, "nsd.pid"))},
		{"logfile", strconv.Quote(filepath.Join(dir, name+".log"))},
		{"verbosity", "1"},
		{"hide-version", "yes"}, // geodnsd: version_bind = "" refuses version.bind
		{"hide-identity", "no"},
		{"identity", strconv.Quote(nodeID)},
		{"nsid", strconv.Quote("ascii_" + nodeID)},
		{"minimal-responses", "yes"},
		{"refuse-any", "no"},
		{"round-robin", "no"},
		{"ipv4-edns-size", "1232"},
		{"ipv6-edns-size", "1232"},
		{"rrl-ratelimit", "0"},
		{"rrl-whitelist-ratelimit", "0"},
		{"xfrd-reload-timeout", "1"},
		{"zonefiles-check", "no"},
		{"zonefiles-write", "0"},
		{"tcp-count", "256"},
	} {
		fmt.Fprintf(&b, "  %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintf(&b, "remote-control:\n  control-enable: no\n")
	b.WriteString(zones)
	conf := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(checkconf, conf).CombinedOutput(); err != nil {
		t.Fatalf("nsd-checkconf %s: %v\n%s\n%s", conf, err, out, b.String())
	}
	s := &server{name: name, v4: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	if withV6 {
		s.v6 = net.JoinHostPort("::1", strconv.Itoa(port))
	}
	s.proc = startProc(t, name, dir, false, nsd, "-d", "-c", conf)
	waitReady(t, s.proc, s.v4, zoneOrigins(t), readyDeadline)
	return s
}

// buildGeodnsd builds ./cmd/geodnsd into a temporary directory. A failed
// build fails the test with the compiler's output.
func buildGeodnsd(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("GEODNSD_BIN"); bin != "" {
		return bin // a prebuilt binary, e.g. from make build
	}
	out := filepath.Join(t.TempDir(), "geodnsd")
	// go test puts its own GOROOT/bin first in PATH.
	cmd := exec.Command("go", "build", "-o", out, "./cmd/geodnsd")
	cmd.Dir = ".." // the module root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/geodnsd: %v\n%s", err, b)
	}
	return out
}

// startGeodnsd builds and starts geodnsd with the corpus zones.
func startGeodnsd(t *testing.T, name string, withV6 bool) *server {
	t.Helper()
	dir := t.TempDir()
	copyZones(t, dir)
	return runGeodnsd(t, name, dir, withV6, "")
}

// runGeodnsd starts geodnsd on the zones of dir/zones, with dnsExtra added
// to its [dns] section, and waits until every corpus zone answers.
func runGeodnsd(t *testing.T, name, dir string, withV6 bool, dnsExtra string) *server {
	t.Helper()
	bin := buildGeodnsd(t)
	port := freePort(t, withV6)
	httpPort := freePort(t, false)
	s := &server{name: name, v4: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	listen := []string{strconv.Quote(s.v4)}
	if withV6 {
		s.v6 = net.JoinHostPort("::1", strconv.Itoa(port))
		listen = append(listen, strconv.Quote(s.v6))
	}
	conf := fmt.Sprintf(`[node]
id = %q

[dns]
listen = [%s]
sockets_per_address = 2
udp_size = 1232
version_bind = ""
%s
[zones]
dir = "zones"

[http]
listen = "127.0.0.1:%d"
`, nodeID, strings.Join(listen, ", "), dnsExtra, httpPort)
	confPath := filepath.Join(dir, "geodnsd.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-check-config", "-config", confPath).CombinedOutput(); err != nil {
		t.Fatalf("geodnsd -check-config: %v\n%s\nconfig:\n%s", err, out, conf)
	}
	s.proc = startProc(t, name, dir, true, bin, "-config", confPath)
	waitReady(t, s.proc, s.v4, zoneOrigins(t), readyDeadline)
	return s
}
