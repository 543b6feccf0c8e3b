package deploy_test

import (
	"context"
	"io/fs"
	"net/netip"
	"path"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/deploy"
	"github.com/geodnsd/geodnsd/dnsserver"
	"github.com/geodnsd/geodnsd/zones"
)

// Every example configuration parses, and every zone it names loads cleanly.
func TestExamplesLoad(t *testing.T) {
	ex := deploy.Examples()
	cfgs, err := fs.Glob(ex, "*/geodnsd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) == 0 {
		t.Fatal("no examples found")
	}
	for _, file := range cfgs {
		t.Run(path.Dir(file), func(t *testing.T) {
			src, err := fs.ReadFile(ex, file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(src, file)
			if err != nil {
				t.Fatal(err)
			}
			st := zones.NewStore(zones.StoreOptions{FS: ex, Dir: cfg.Zones.Dir})
			if err := st.Load(); err != nil {
				t.Fatal(err)
			}
			if !st.Ready() || len(st.Snapshot().Zones()) == 0 {
				t.Fatalf("%s: zones in %s not loaded", file, cfg.Zones.Dir)
			}
			serveExample(t, cfg, st)
		})
	}
	if _, err := fs.Stat(ex, deploy.DemoConfig); err != nil {
		t.Errorf("demo config: %v", err)
	}
}

// serveExample starts a nameserver with the example's DNS settings on a free
// loopback port and checks that every zone answers its SOA authoritatively.
func serveExample(t *testing.T, cfg *config.Config, st *zones.Store) {
	t.Helper()
	srv, err := dnsserver.New(dnsserver.Options{
		Listen:            []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")},
		SocketsPerAddress: 1,
		UDPSize:           cfg.DNS.UDPSize,
		TCPIdleTimeout:    cfg.DNS.TCPIdleTimeout.Duration,
		TCPMaxConnections: cfg.DNS.TCPMaxConnections,
		NSID:              cfg.DNS.NSID,
		Identity:          cfg.Node.ID,
		VersionBind:       cfg.DNS.VersionBind,
		Source:            st,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, z := range st.Snapshot().Zones() {
		m := new(dns.Msg)
		m.SetQuestion(z.Origin(), dns.TypeSOA)
		r, _, err := c.Exchange(m, srv.UDPAddrs()[0].String())
		if err != nil {
			t.Fatalf("%s SOA: %v", z.Origin(), err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
			t.Errorf("%s SOA: %v", z.Origin(), r)
		}
	}
}
