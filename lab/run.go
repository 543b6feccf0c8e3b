package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/geodnsd/geodnsd/node"
)

// ControlAddr is where the demo serves the backends' control API.
const ControlAddr = "127.0.0.1:8099"

// RunDemo prepares a lab in a temporary directory, starts its backends, the
// control API on the Layout's Control address and every node in this process, prints what to
// try on out, and runs until ctx ends; then it stops everything and removes
// the directory. Logs go to logw.
func RunDemo(ctx context.Context, o Options, out, logw io.Writer) error {
	dir, err := os.MkdirTemp("", "geodnsd-lab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := Prepare(dir, o)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logw, nil))
	be, err := StartBackends(l.Sites, log)
	if err != nil {
		return fmt.Errorf("lab backends: %w", err)
	}
	defer be.Stop()
	if _, err := be.ServeControl(l.Control); err != nil {
		return err
	}

	var nodes []*node.Node
	for _, n := range l.Nodes {
		nd, err := node.New(node.Options{Source: node.Source{File: n.Config}, Log: logw})
		if err != nil {
			return fmt.Errorf("lab node %s: %w", n.ID, err)
		}
		nodes = append(nodes, nd)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// SIGHUP reloads every node (the lab's files are in the directory the
	// guide names), instead of ending the process with its files left behind.
	hups := make([]chan struct{}, len(nodes))
	for i := range hups {
		hups[i] = make(chan struct{}, 1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	defer signal.Stop(sig)
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-sig:
				for _, h := range hups {
					select {
					case h <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := nd.Run(runCtx, hups[i]); err != nil {
				errs[i] = fmt.Errorf("%s: %w", l.Nodes[i].ID, err)
				stop() // one node failing to start stops the lab
			}
		}()
	}
	l.WriteGuide(out)
	wg.Wait()
	return errors.Join(errs...)
}

// WriteGuide prints where the lab is and what to try.
func (l *Layout) WriteGuide(w io.Writer) {
	n1 := l.Nodes[0]
	fmt.Fprintf(w, `
geodnsd lab: %d nameservers (%s … %s), sites dallas, losangeles, london.

  status page     http://%s/            (any node: %s … %s)
  status JSON     curl -s http://%s/status.json
  ask any node    dig @%s -p %d cas.example.com A +norecurse
                  dig @%s -p %d www.example.com A +norecurse +subnet=81.2.69.160/27   (Europe → london)
                  dig @%s -p %d example.com MX +norecurse
  break, repair   curl -X POST %s/dallas/down      (and /dallas/up, /dallas/dal1/down,
                  curl -X POST %s/dallas/behind/12  /dallas/behind/0: replication lag)
  operate         export GEODNSD_TOKEN=%s
                  go run ./cmd/failoverctl --server http://%s status
                  go run ./cmd/failoverctl --server http://%s failover cas --to losangeles
                  go run ./cmd/failoverctl --server http://%s promote dallas

Files (configs, certificates, state): %s
SIGHUP reloads every node from them; Ctrl-C stops everything and removes them.
`,
		len(l.Nodes), l.Nodes[0].ID, l.Nodes[len(l.Nodes)-1].ID,
		n1.HTTP, l.Nodes[0].HTTP.Addr(), l.Nodes[len(l.Nodes)-1].HTTP.Addr(),
		n1.HTTP,
		n1.DNS.Addr(), n1.DNS.Port(),
		l.Nodes[len(l.Nodes)-1].DNS.Addr(), n1.DNS.Port(),
		n1.DNS.Addr(), n1.DNS.Port(),
		"http://"+l.Control, "http://"+l.Control,
		l.Token, n1.HTTP, n1.HTTP, n1.HTTP, l.Dir)
}
