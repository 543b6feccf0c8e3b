// Package lab is the mission on one machine: six geodnsd nodes on
// 127.0.0.11–16 with real raft over mutual TLS (certificates made at start),
// and three sites — dallas, losangeles, london — whose backends are small
// loopback servers that a person or a test can break and repair. `geodnsd
// -demo` runs it in one process; the drill test writes the same files and
// starts six real processes on them.
package lab

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/geodnsd/geodnsd/cluster"
	"github.com/geodnsd/geodnsd/deploy"
)

// Options say how to lay the lab out. The zero value is the demo's lab.
type Options struct {
	// Nodes is the number of nodes (default 6), on 127.0.Net.11, .12, ...
	Nodes int
	// Net is the third octet of every lab address (default 0: nodes on
	// 127.0.0.11–16, backends on 127.0.0.21–49), so that labs of tests
	// running side by side do not meet.
	Net byte
	// DNSPort, HTTPPort and RaftPort are every node's ports (defaults 5353,
	// 8053 and 7000).
	DNSPort, HTTPPort, RaftPort int
	// CASFailover and CASFailback are the cas service's modes (default
	// manual and manual, as the story runs it).
	CASFailover, CASFailback string
	// Token is the operator's bearer token; "" makes a random one.
	Token string
}

// NodeSpec is one lab node's addresses.
type NodeSpec struct {
	ID   string
	DNS  netip.AddrPort
	HTTP netip.AddrPort
	Raft netip.AddrPort
	// Config is the node's configuration file.
	Config string
}

// Layout is a prepared lab directory.
type Layout struct {
	Dir   string
	Nodes []NodeSpec
	Sites []SiteSpec
	// Token is the operator token (its SHA-256 is in every config).
	Token string
	// Control is where RunDemo serves the backends' control API:
	// ControlAddr, or 127.0.Net.1:8099 when Net is set.
	Control string
}

// Sites are the lab's three sites in network 127.0.net.0/24. Endpoint
// addresses are documentation addresses that DNS answers with; the backends
// listen on loopback probe addresses.
func Sites(net byte) []SiteSpec {
	a := func(s string) netip.Addr {
		b := netip.MustParseAddr(s).As4()
		b[2] = net
		return netip.AddrFrom4(b)
	}
	return []SiteSpec{
		{Name: "dallas", Lat: 32.78, Lon: -96.80, Sync: a("127.0.0.29"), Endpoints: []EndpointSpec{
			{Name: "dal1", Address: "192.0.2.10", Probe: a("127.0.0.21")},
			{Name: "dal2", Address: "192.0.2.11", Probe: a("127.0.0.22")},
		}},
		{Name: "london", Lat: 51.51, Lon: -0.13, Sync: a("127.0.0.49"), Endpoints: []EndpointSpec{
			{Name: "lon1", Address: "203.0.113.10", Probe: a("127.0.0.41")},
			{Name: "lon2", Address: "203.0.113.11", Probe: a("127.0.0.42")},
		}},
		{Name: "losangeles", Lat: 34.05, Lon: -118.24, Sync: a("127.0.0.39"), Endpoints: []EndpointSpec{
			{Name: "la1", Address: "198.51.100.10", Probe: a("127.0.0.31")},
			{Name: "la2", Address: "198.51.100.11", Probe: a("127.0.0.32")},
		}},
	}
}

// Prepare writes a lab into dir (which must be empty or not exist): the
// cluster CA and node certificates, the zone, the GeoIP2 test database and
// one configuration file per node.
func Prepare(dir string, o Options) (*Layout, error) {
	if o.Nodes == 0 {
		o.Nodes = 6
	}
	if o.Nodes < 1 || o.Nodes > 9 {
		return nil, fmt.Errorf("lab: %d nodes: want 1..9", o.Nodes)
	}
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.DNSPort, 5353)
	def(&o.HTTPPort, 8053)
	def(&o.RaftPort, 7000)
	if o.CASFailover == "" {
		o.CASFailover = "manual"
	}
	if o.CASFailback == "" {
		o.CASFailback = "manual"
	}
	if o.Token == "" {
		b := make([]byte, 24)
		rand.Read(b)
		o.Token = "lab-" + hex.EncodeToString(b)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	l := &Layout{Dir: abs, Sites: Sites(o.Net), Token: o.Token, Control: ControlAddr}
	if o.Net != 0 {
		l.Control = fmt.Sprintf("127.0.%d.1:8099", o.Net)
	}
	var members []cluster.Member
	for i := range o.Nodes {
		ip := netip.AddrFrom4([4]byte{127, 0, o.Net, byte(11 + i)})
		n := NodeSpec{
			ID:     fmt.Sprintf("ns%d", i+1),
			DNS:    netip.AddrPortFrom(ip, uint16(o.DNSPort)),
			HTTP:   netip.AddrPortFrom(ip, uint16(o.HTTPPort)),
			Raft:   netip.AddrPortFrom(ip, uint16(o.RaftPort)),
			Config: filepath.Join(abs, fmt.Sprintf("ns%d.toml", i+1)),
		}
		l.Nodes = append(l.Nodes, n)
		members = append(members, cluster.Member{ID: n.ID, Raft: n.Raft, HTTP: n.HTTP.String(), Voter: true})
	}
	if _, err := cluster.WritePKI(filepath.Join(abs, "certs"), members, time.Now()); err != nil {
		return nil, fmt.Errorf("lab certificates: %w", err)
	}
	src := deploy.Lab()
	if err := copyTree(src, abs); err != nil {
		return nil, err
	}
	tb, err := fs.ReadFile(src, "node.toml.tmpl")
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("node.toml").Option("missingkey=error").Parse(string(tb))
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(o.Token))
	for _, n := range l.Nodes {
		var b strings.Builder
		err := tmpl.Execute(&b, map[string]any{
			"ID": n.ID, "DNS": n.DNS, "HTTP": n.HTTP, "Raft": n.Raft,
			"Nodes": l.Nodes, "Sites": l.Sites, "TokenSHA256": hex.EncodeToString(sum[:]),
			"HTTPPort": HTTPPort, "SMTPPort": SMTPPort, "SyncPort": SyncPort,
			"CASFailover": o.CASFailover, "CASFailback": o.CASFailback,
		})
		if err != nil {
			return nil, fmt.Errorf("lab config %s: %w", n.ID, err)
		}
		if err := os.WriteFile(n.Config, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// copyTree copies src's zones and database (not the template) into dir.
func copyTree(src fs.FS, dir string) error {
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." || p == "node.toml.tmpl" {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
