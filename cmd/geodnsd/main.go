// Command geodnsd is the GeoDNS failover nameserver. This file is wiring
// only: flags, signals and exit codes around package node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/geodnsd/geodnsd/cluster"

	"github.com/geodnsd/geodnsd/lab"
	"github.com/geodnsd/geodnsd/node"
)

// Exit codes scripts can rely on.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure (cannot bind, ...)
	exitConfig = 2 // bad flags, configuration or zone data
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run is geodnsd's main; hup delivers reload requests (nil: SIGHUP).
func run(ctx context.Context, args []string, stdout, stderr io.Writer, hup <-chan struct{}) int {
	fl := flag.NewFlagSet("geodnsd", flag.ContinueOnError)
	fl.SetOutput(stderr)
	configPath := fl.String("config", "/etc/geodnsd/geodnsd.toml", "configuration `file`")
	demo := fl.Bool("demo", false, "run the six-node lab: nameservers on 127.0.0.11-16:5353, backends to break and repair, all in this process")
	check := fl.Bool("check-config", false, "validate the configuration (-config, or a file named after the flags), every zone and every check, then exit (0 ok, 2 errors)")
	version := fl.Bool("version", false, "print the version and exit")
	makeCerts := fl.String("make-certs", "", "write a cluster CA and node certificates into `dir` (with -nodes), then exit")
	nodes := fl.String("nodes", "", "for -make-certs: `id=ip,...`, each node's id and raft IP address")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if *check && fl.NArg() == 1 {
		*configPath = fl.Arg(0) // geodnsd -check-config FILE, as failoverctl validate FILE
	} else if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "geodnsd: unexpected argument %q\n", fl.Arg(0))
		return exitConfig
	}
	if *version {
		fmt.Fprintf(stdout, "geodnsd %s\n", buildVersion())
		return exitOK
	}
	if *makeCerts != "" {
		return writeCerts(*makeCerts, *nodes, stdout, stderr)
	}
	if *demo && !*check {
		if err := lab.RunDemo(ctx, lab.Options{}, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "geodnsd: demo: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	src := node.Source{File: *configPath, Demo: *demo}
	if *check {
		rep, err := node.Validate(src)
		if err != nil {
			fmt.Fprintf(stderr, "%v\n", err)
			return exitConfig
		}
		rep.Write(stdout)
		return exitOK
	}
	n, err := node.New(node.Options{Source: src, Log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "geodnsd: %v\n", err)
		if errors.Is(err, node.ErrConfig) {
			return exitConfig
		}
		return exitFail
	}
	if err := n.Run(ctx, hup); err != nil {
		n.Logger().Error("geodnsd", "err", err)
		return exitFail
	}
	return exitOK
}

// buildVersion is the module version and VCS revision the binary was built
// from, as the Go toolchain recorded them.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev + dirty
	}
	return v + " " + bi.GoVersion
}

// writeCerts is -make-certs: a cluster CA (reused if dir has one) and one
// certificate per node naming its id and raft IP (cluster.WritePKI).
func writeCerts(dir, nodes string, stdout, stderr io.Writer) int {
	var ms []cluster.Member
	for _, f := range strings.Split(nodes, ",") {
		id, ip, ok := strings.Cut(strings.TrimSpace(f), "=")
		addr, err := netip.ParseAddr(ip)
		if !ok || id == "" || err != nil {
			fmt.Fprintf(stderr, "geodnsd: -nodes: %q: want id=ip, e.g. ns1=192.0.2.53\n", f)
			return exitConfig
		}
		ms = append(ms, cluster.Member{ID: id, Raft: netip.AddrPortFrom(addr, 0), Voter: true})
	}
	files, err := cluster.WritePKI(dir, ms, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "geodnsd: -make-certs: %v\n", err)
		return exitFail
	}
	ids := make([]string, 0, len(files))
	for id := range files {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		f := files[id]
		fmt.Fprintf(stdout, "%s: ca = %q, cert = %q, key = %q\n", id, f.CA, f.Cert, f.Key)
	}
	return exitOK
}
