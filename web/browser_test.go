package web

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/geodnsd/geodnsd/failover"
)

// requireChromium fails (never skips) when no Chromium is installed: the
// page must be shown working in a real browser (apt-get install -y chromium).
func requireChromium(t *testing.T) string {
	t.Helper()
	// The binary itself first: Debian's /usr/bin/chromium is a shell wrapper
	// that has been seen failing to start ("[: unexpected operator").
	for _, bin := range []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(bin); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install it (apt-get install -y chromium)")
	return ""
}

// TestPageInBrowser loads the status page in headless Chromium at a phone's
// width and watches it refresh itself: Dallas is green, its backends stop,
// and the page turns it red without being reloaded by the test. A
// screenshot of each state is kept in the test's artifact directory
// (go test -artifacts).
func TestPageInBrowser(t *testing.T) {
	exe := requireChromium(t)
	e := newEnv(t, failover.Manual, failover.Manual, func(o *Options) { o.PageRefresh = 2 * time.Second })

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(390, 844),
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()

	const dot = `document.querySelector('#site-cas-default-dallas > .dot')`
	// look waits until Dallas's entry has the class, then reads its dot's
	// colour and takes a screenshot. The page reloads itself, and a step
	// that meets a reload fails ("execution context destroyed"): each step
	// is retried on the next tick until the deadline.
	look := func(class, png string) string {
		t.Helper()
		var colour string
		var shot []byte
		err := retry(ctx, func(ctx context.Context) error {
			got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#site-cas-default-dallas')||{}).className||""`))
			if err != nil {
				return err
			}
			if got != class {
				return fmt.Errorf("dallas is %q", got)
			}
			if colour, err = chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(`+dot+`).backgroundColor`)); err != nil {
				return err
			}
			shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
			return err
		})
		if err != nil {
			t.Fatalf("waiting for dallas to be %s: %v", class, err)
		}
		save(t, png, shot)
		return colour
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if c := look("g", "page-up.png"); c != "rgb(26, 127, 55)" {
		t.Errorf("dallas's dot is %s while up, want green rgb(26, 127, 55)", c)
	}
	var overflow bool
	err := retry(ctx, func(ctx context.Context) (err error) {
		overflow, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		return err
	})
	if err != nil || overflow {
		t.Errorf("the page is wider than a 390 px phone screen (%v)", err)
	}

	e.site("dallas", false, t0.Add(time.Minute)) // the page refreshes itself every second
	if c := look("r", "page-dallas-down.png"); c != "rgb(207, 34, 46)" {
		t.Errorf("dallas's dot is %s while down, want red rgb(207, 34, 46)", c)
	}
}

func save(t *testing.T, name string, b []byte) {
	t.Helper()
	if len(b) == 0 {
		t.Errorf("empty screenshot %s", name)
		return
	}
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s", p)
}

// retry runs step every 100 ms, each try bounded to 10 s, until it succeeds
// or ctx ends; it returns the last error.
func retry(ctx context.Context, step func(context.Context) error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := step(sctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}
