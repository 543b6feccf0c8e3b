package lab_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/lab"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoRunsAndStops runs the demo's lab in this process (as `geodnsd
// -demo` does, in network 127.0.11.0/24 so as not to meet a demo someone
// runs), checks that all six nodes answer the same and that the control API
// breaks a site, then ends it as SIGTERM would (the context) and checks that
// everything it started has stopped and its files are gone.
func TestDemoRunsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("six nodes: not in -short")
	}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lab.RunDemo(ctx, lab.Options{Net: 11}, &out, io.Discard) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	waitFor(t, "every node ready", func() error {
		for i := 11; i <= 16; i++ {
			r, err := http.Get(fmt.Sprintf("http://127.0.11.%d:8053/readyz", i))
			if err != nil {
				return err
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				return fmt.Errorf("ns%d: %d", i-10, r.StatusCode)
			}
		}
		return nil
	})
	guide := out.String()
	for _, want := range []string{"dig @127.0.11.11 -p 5353", "http://127.0.11.1:8099/dallas/down", "export GEODNSD_TOKEN=lab-", "failoverctl"} {
		if !strings.Contains(guide, want) {
			t.Errorf("the guide does not say %q:\n%s", want, guide)
		}
	}
	m := regexp.MustCompile(`Files \(configs, certificates, state\): (\S+)`).FindStringSubmatch(guide)
	if m == nil {
		t.Fatalf("the guide does not say where the files are:\n%s", guide)
	}
	dir := m[1]

	waitFor(t, "all six answering cas with dallas", func() error {
		for i := 11; i <= 16; i++ {
			q := new(dns.Msg)
			q.SetQuestion("cas.example.com.", dns.TypeA)
			r, err := dns.Exchange(q, fmt.Sprintf("127.0.11.%d:5353", i))
			if err != nil {
				return err
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
				return fmt.Errorf("ns%d: %v", i-10, r)
			}
		}
		return nil
	})
	resp, err := http.Post("http://127.0.11.1:8099/dallas/dal1/down", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control API: %v %v", resp, err)
	}
	resp.Body.Close()
	waitFor(t, "dal1 leaving the answers", func() error {
		q := new(dns.Msg)
		q.SetQuestion("cas.example.com.", dns.TypeA)
		r, err := dns.Exchange(q, "127.0.11.14:5353")
		if err != nil {
			return err
		}
		if len(r.Answer) != 1 {
			return fmt.Errorf("answers %v", r.Answer)
		}
		return nil
	})

	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("the demo stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30s")
	}
	for _, addr := range []string{"127.0.11.11:5353", "127.0.11.16:8053", "127.0.11.13:7000", "127.0.11.1:8099", "127.0.11.21:8080", "127.0.11.29:8081"} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the demo stopped", addr)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the demo's directory %s is still there (%v)", dir, err)
	}
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
