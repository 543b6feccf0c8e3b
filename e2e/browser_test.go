package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/geodnsd/geodnsd/lab"
)

// TestDrillPageInBrowser opens the status page of a running node of the
// six-process lab in headless Chromium and watches it through step 2 of the
// drill: Dallas green, then every Dallas backend stopped — the page (which
// refreshes itself) turns Dallas red and says cas is awaiting an operator.
// The screenshot of step 2 is kept in the test's artifact directory
// (go test -artifacts).
func TestDrillPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("six processes: not in -short")
	}
	exe := ""
	// The binary itself first: Debian's /usr/bin/chromium is a shell wrapper
	// that has been seen failing to start ("[: unexpected operator").
	for _, bin := range []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(bin); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		t.Fatal("no Chromium found: install it (apt-get install -y chromium)")
	}
	c := startLab(t, lab.Options{Net: 10})
	c.waitAnswer(moveWithin, c.ids(), "cas.example.com", noECS, dallasAddrs...)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(390, 1400),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-background-networking", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()

	// class waits until the page (reloading itself) gives element id the
	// class, then returns a full screenshot.
	class := func(id, want string) []byte {
		t.Helper()
		var shot []byte
		deadline := time.Now().Add(90 * time.Second)
		for {
			sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
			got, err := chromedp.Run(sctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.getElementById(%q)||{}).className||""`, id)))
			if err == nil && got == want {
				shot, err = chromedp.Run(sctx, chromedp.FullScreenshot(100)) // quality 100: PNG (below: JPEG)
				scancel()
				if err == nil {
					return shot
				}
			}
			scancel()
			if time.Now().After(deadline) {
				t.Fatalf("the page never showed %s as %q (last %q, %v)", id, want, got, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+c.node("ns2").HTTP.String()+"/")); err != nil {
		t.Fatal(err)
	}
	keep(t, "drill-step0-normal.png", class("site-cas-default-dallas", "g"))

	if err := c.be.SetSite("dallas", false); err != nil {
		t.Fatal(err)
	}
	class("site-cas-default-dallas", "r")
	shot := class("route-cas-default", "r")
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("route-cas-default").innerText`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "awaiting_operator") {
		t.Errorf("cas's route on the page does not say awaiting_operator: %q", text)
	}
	keep(t, "drill-step2-awaiting-operator.png", shot)
}

// keep writes a screenshot into the test's artifact directory.
func keep(t *testing.T, name string, png []byte) {
	t.Helper()
	if len(png) == 0 {
		t.Errorf("empty screenshot %s", name)
		return
	}
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s", p)
}
