// Command servicesd is the benchmark harness for service answers: it serves
// a zone directory plus one geo-routed service with the same packages the
// node assembles (zones.Store, zones.Services with a geo.Locator and
// geo.Router, a fixed zones.Routing view, dnsserver.Server), so that
// bench/dnsperf-services.sh can measure the query path of service names
// before and independently of the node's configuration. With -gen it writes
// a dnsperf -B query file instead (2-byte length + message, as over TCP).
//
//	servicesd -listen 127.0.0.1:5300 -zones DIR -city CITY.mmdb [-asn ASN.mmdb] [-sockets N]
//	servicesd -gen FILE -city CITY.mmdb [-n 20000]
//
// The service: "www" at www.<zone>, route "eu" (continent EU) -> london
// 203.0.113.10 and 2001:db8::20, the default -> dallas 192.0.2.10 and
// 2001:db8::10, TTL 30.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/miekg/dns"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/geodnsd/geodnsd/dnsserver"
	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/geo"
	"github.com/geodnsd/geodnsd/zones"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("servicesd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5300", "address:port for UDP and TCP")
	dir := fs.String("zones", "zones", "directory of *.zone files")
	origin := fs.String("origin", "example.com.", "zone holding the service name www.<origin>")
	city := fs.String("city", "", "city or country mmdb")
	asn := fs.String("asn", "", "ASN mmdb (optional)")
	sockets := fs.Int("sockets", 0, "UDP sockets per address (0: one per CPU)")
	gen := fs.String("gen", "", "write a dnsperf -B query file here and exit")
	n := fs.Int("n", 20000, "queries in the -gen file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *gen != "" {
		if err := generate(*gen, *city, dns.Fqdn(*origin), *n); err != nil {
			fmt.Fprintln(stderr, "servicesd:", err)
			return 1
		}
		return 0
	}
	if err := serve(*listen, *dir, dns.Fqdn(*origin), *city, *asn, *sockets, stderr); err != nil {
		fmt.Fprintln(stderr, "servicesd:", err)
		return 1
	}
	return 0
}

func serve(listen, dir, origin, city, asn string, sockets int, stderr io.Writer) error {
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	st := zones.NewStore(zones.StoreOptions{FS: os.DirFS(dir), Logger: log})
	if err := st.Load(); err != nil {
		return err
	}
	loc, err := geo.Open(city, asn)
	if err != nil {
		return err
	}
	router, err := geo.NewRouter("default", []geo.Rule{{Name: "eu", Continents: []string{"EU"}}})
	if err != nil {
		return err
	}
	svcs, err := zones.NewServices(loc, []zones.Service{{Name: "www", Names: []string{"www." + origin}, TTL: 30, Router: router}})
	if err != nil {
		return err
	}
	if err := st.SetServices(svcs); err != nil {
		return err
	}
	e := func(addrs ...string) []failover.Endpoint {
		var out []failover.Endpoint
		for _, a := range addrs {
			out = append(out, failover.Endpoint{Name: a, Address: a})
		}
		return out
	}
	st.SetRouting(&zones.Routing{Version: 1, Answers: []failover.Answer{
		{Service: "www", Route: "default", Site: "dallas", Endpoints: e("192.0.2.10", "2001:db8::10")},
		{Service: "www", Route: "eu", Site: "london", Endpoints: e("203.0.113.10", "2001:db8::20")},
	}})
	srv, err := dnsserver.New(dnsserver.Options{Listen: []netip.AddrPort{ap}, SocketsPerAddress: sockets, Source: st, NSID: "bench", Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	return srv.Shutdown(sctx)
}

// generate writes n queries for www.<origin> (A 3/4, AAAA 1/4), each with
// an ECS option (source /24, or /48 for IPv6) from a subnet drawn from the
// database's own networks (so most clients have a location, in Europe and
// elsewhere) or, one in five, from a random public IPv4 /24.
func generate(file, city, origin string, n int) error {
	db, err := maxminddb.Open(city)
	if err != nil {
		return err
	}
	defer db.Close()
	var nets []netip.Prefix
	for res := range db.Networks(maxminddb.SkipEmptyValues()) {
		if err := res.Err(); err != nil {
			return err
		}
		nets = append(nets, res.Prefix())
	}
	if len(nets) == 0 {
		return errors.New("no networks in " + city)
	}
	r := rand.New(rand.NewPCG(2026, 11))
	var out []byte
	for i := range n {
		var p netip.Prefix
		if r.IntN(5) == 0 {
			a := netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), 0})
			p = netip.PrefixFrom(a, 24)
		} else {
			p = nets[r.IntN(len(nets))]
			bits := 24
			if p.Addr().Is6() {
				bits = 48
			}
			p, _ = p.Addr().Prefix(bits)
		}
		fam := uint16(1)
		if p.Addr().Is6() {
			fam = 2
		}
		qt := dns.TypeA
		if i%4 == 3 {
			qt = dns.TypeAAAA
		}
		m := new(dns.Msg)
		m.Id = uint16(i)
		m.SetQuestion("www."+origin, qt)
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(1232)
		addr := p.Addr().AsSlice() // miekg/dns truncates it to the source prefix
		o.Option = []dns.EDNS0{&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam, SourceNetmask: uint8(p.Bits()), Address: addr}}
		m.Extra = []dns.RR{o}
		b, err := m.Pack()
		if err != nil {
			return err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return os.WriteFile(file, out, 0o644)
}
