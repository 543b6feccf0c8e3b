package node

import (
	"context"
	"encoding/hex"
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

// TestExamplesServe parses every example under deploy/, loads its zones and
// starts a nameserver with the options run() derives from it (only the
// listen address moved to a free loopback port), then checks that every zone
// answers its SOA authoritatively and that the node id comes back as NSID.
func TestExamplesServe(t *testing.T) {
	ex := deploy.Examples()
	files, err := fs.Glob(ex, "*/geodnsd.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, file := range files {
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
			opts := dnsOptions(cfg, st, nil, nil)
			opts.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
			srv, err := dnsserver.New(opts)
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
				m.SetEdns0(1232, false)
				m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
				r, _, err := c.Exchange(m, srv.UDPAddrs()[0].String())
				if err != nil {
					t.Fatalf("%s SOA: %v", z.Origin(), err)
				}
				if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("%s SOA: %v", z.Origin(), r)
				}
				nsid := ""
				if opt := r.IsEdns0(); opt != nil {
					for _, o := range opt.Option {
						if n, ok := o.(*dns.EDNS0_NSID); ok {
							nsid = n.Nsid
						}
					}
				}
				if want := hex.EncodeToString([]byte(cfg.DNS.NSID)); nsid != want {
					t.Errorf("%s: NSID %q, want %q (%s)", z.Origin(), nsid, want, cfg.DNS.NSID)
				}
			}
		})
	}
}
