// Command geodnsd is the GeoDNS failover nameserver. This file is wiring
// only: flags, signals and exit codes around package node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

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
	check := fl.Bool("check-config", false, "validate the configuration, every zone and every check, then exit (0 ok, 2 errors)")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "geodnsd: unexpected argument %q\n", fl.Arg(0))
		return exitConfig
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
