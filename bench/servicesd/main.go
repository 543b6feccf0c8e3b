// Command servicesd is the benchmark harness for service answers: it serves
// a zone directory plus one geo-routed service with the same packages the
// node assembles (zones.Store, zones.Services with a geo.Locator and
// geo.Router, a fixed zones.Routing view, dnsserver.Server), so that
// bench/dnsperf-services.sh can measure the query path of service names
// before and independently of the node's configuration. With -gen it writes
// a dnsperf -B query file instead (2-byte length + message, as over TCP).
//
//	servicesd -listen 127.0.0.1:5300 -zones DIR -city CITY.mmdb [-asn ASN.mmdb] [-sockets N] [-cpuprofile FILE]
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
	"runtime/pprof"
	"strings"
	"syscall"

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
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the serving here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *gen != "" {
		if err := generate(*gen, *city, fqdn(*origin), *n); err != nil {
			fmt.Fprintln(stderr, "servicesd:", err)
			return 1
		}
		return 0
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "servicesd:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "servicesd:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if err := serve(*listen, *dir, fqdn(*origin), *city, *asn, *sockets, stderr); err != nil {
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
// EDNS(0) and an ECS option (source /24, or /48 for IPv6) from a subnet
// drawn from the database's own networks (so most clients have a location,
// in Europe and elsewhere) or, one in five, from a random public IPv4 /24.
func generate(file, city, origin string, n int) error {
	loc, err := geo.Open(city, "")
	if err != nil {
		return err
	}
	var nets []netip.Prefix
	for p := range loc.Networks() {
		nets = append(nets, p)
	}
	if len(nets) == 0 {
		return errors.New("no networks in " + city)
	}
	qname, err := wireName("www." + origin)
	if err != nil {
		return err
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
		qtype := uint16(1) // A
		if i%4 == 3 {
			qtype = 28 // AAAA
		}
		m := query(uint16(i), qname, qtype, p)
		out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
		out = append(out, m...)
	}
	return os.WriteFile(file, out, 0o644)
}

// query packs a query (RD clear) with an OPT RR (payload 1232) carrying an
// ECS option for p (RFC 7871 §6: the address truncated to the prefix).
func query(id uint16, qname []byte, qtype uint16, p netip.Prefix) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1) // flags, QD 1, AN 0, NS 0, AR 1
	b = append(b, qname...)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1) // IN
	family := uint16(1)
	if p.Addr().Is6() {
		family = 2
	}
	addr := p.Addr().AsSlice()[:(p.Bits()+7)/8]
	b = append(b, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0) // root, OPT, 1232, ext rcode, version, flags
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(addr)))
	b = binary.BigEndian.AppendUint16(b, 8) // ECS
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(addr)))
	b = binary.BigEndian.AppendUint16(b, family)
	b = append(b, byte(p.Bits()), 0)
	return append(b, addr...)
}

// wireName packs a domain name without compression.
func wireName(name string) ([]byte, error) {
	name = fqdn(name)
	var b []byte
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return nil, fmt.Errorf("bad name %q", name)
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0), nil
}

func fqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}
