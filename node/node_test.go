package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/lab"
	"github.com/geodnsd/geodnsd/node"
	"github.com/geodnsd/geodnsd/web/api"
)

// oneNodeConfig is a node without [cluster]: a one-node cluster on the same
// code path as six. Its sites are the lab's backends in 127.0.net.0/24.
const oneNodeConfig = `
[node]
id = "solo"
state_dir = "state"
[dns]
listen = ["127.0.%[1]d.11:%[2]d"]
[zones]
dir = "zones"
[http]
listen = "127.0.%[1]d.11:%[3]d"
status_rate = 0
[cluster]
vote_ttl = "6s"
[checks]
interval = "1s"
timeout = "500ms"
rise = 1
fall = 1
[sites.dallas]
endpoints = [{ name = "dal1", address = "192.0.2.10", probe = "127.0.%[1]d.21" }, { name = "dal2", address = "192.0.2.11", probe = "127.0.%[1]d.22" }]
[[sites.dallas.checks]]
name = "web"
type = "http"
port = 8080
path = "/healthz"
[sites.london]
endpoints = [{ name = "lon1", address = "203.0.113.10", probe = "127.0.%[1]d.41" }, { name = "lon2", address = "203.0.113.11", probe = "127.0.%[1]d.42" }]
[[sites.london.checks]]
name = "web"
type = "http"
port = 8080
path = "/healthz"
[services.cas]
names = ["cas.example.com"]
sites = ["dallas", "london"]
failover = "manual"
down_for = "1s"
min_interval = "1s"
[services.www]
names = ["www.example.com"]
sites = ["dallas", "london"]
failover = "auto"
down_for = "1s"
min_interval = "1s"
%[4]s
`

const oneNodeZone = `$ORIGIN example.com.
$TTL 300
@ 3600 IN SOA ns1 hostmaster 1 3600 600 1209600 30
@ 3600 IN NS ns1
ns1 IN A 127.0.0.11
`

type soloNode struct {
	t        *testing.T
	dir      string
	dns, web string
	hup      chan struct{}
	done     chan error
}

// startSolo writes the one-node config (with extra TOML appended) and runs
// the node until the test ends.
func startSolo(t *testing.T, net int, extra string) *soloNode {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "zones"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "zones", "example.com.zone"), []byte(oneNodeZone), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "geodnsd.toml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(oneNodeConfig, net, 5353, 8053, extra)), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{Source: node.Source{File: cfgPath}, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	s := &soloNode{t: t, dir: dir, dns: fmt.Sprintf("127.0.%d.11:5353", net), web: fmt.Sprintf("127.0.%d.11:8053", net),
		hup: make(chan struct{}), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- n.Run(ctx, s.hup) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("node stopped with: %v", err)
		}
	})
	s.waitFor("ready", func() error {
		r, err := http.Get("http://" + s.web + "/readyz")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("readyz %d", r.StatusCode)
		}
		return nil
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (s *soloNode) waitFor(what string, cond func() error) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("still not %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// a returns the sorted A records of name, after checking rcode and AA.
func (s *soloNode) a(name string) ([]string, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, err := dns.Exchange(m, s.dns)
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return nil, fmt.Errorf("%s: rcode %s AA %v", name, dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			if a.Hdr.Ttl != 30 {
				return nil, fmt.Errorf("%s: TTL %d, want the service's 30", name, a.Hdr.Ttl)
			}
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out, nil
}

func (s *soloNode) waitA(name string, want ...string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("%s A %v", name, want), func() error {
		got, err := s.a(name)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("answers %v", got)
		}
		return nil
	})
}

func (s *soloNode) status() (*api.Status, error) {
	r, err := http.Get("http://" + s.web + "/status.json")
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	var st api.Status
	return &st, json.NewDecoder(r.Body).Decode(&st)
}

// TestOneNodeMovesItsAnswers: without [cluster], a node is a one-node
// cluster on the same code path, so its own verdicts move its answers: a
// stopped backend leaves the answers at once (endpoint level), a whole site
// down fails www (auto) over and holds cas (manual) on the down site,
// awaiting an operator, answering every endpoint (fail open).
func TestOneNodeMovesItsAnswers(t *testing.T) {
	be, err := lab.StartBackends(lab.Sites(8), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Stop)
	s := startSolo(t, 8, "")
	s.waitA("www.example.com.", "192.0.2.10", "192.0.2.11")
	s.waitA("cas.example.com.", "192.0.2.10", "192.0.2.11")

	be.SetEndpoint("dallas", "dal1", false)
	s.waitA("www.example.com.", "192.0.2.11")
	s.waitA("cas.example.com.", "192.0.2.11")

	be.SetSite("dallas", false)
	s.waitA("www.example.com.", "203.0.113.10", "203.0.113.11")
	s.waitFor("cas awaiting an operator", func() error {
		st, err := s.status()
		if err != nil {
			return err
		}
		for _, sv := range st.Services {
			if sv.Name == "cas" && (sv.Routes[0].Active != "dallas" || sv.Routes[0].Condition != "awaiting_operator") {
				return fmt.Errorf("cas on %s, %s", sv.Routes[0].Active, sv.Routes[0].Condition)
			}
		}
		return nil
	})
	if got, err := s.a("cas.example.com."); err != nil || !slices.Equal(got, []string{"192.0.2.10", "192.0.2.11"}) {
		t.Errorf("cas awaiting an operator answers %v (%v), want every dallas endpoint", got, err)
	}
}

// TestReloadRespecsThroughTheLog: a reload that adds a service changes the
// replicated spec (a Respec entry in the log) and the new name answers; a
// broken file keeps the last good configuration.
func TestReloadRespecsThroughTheLog(t *testing.T) {
	be, err := lab.StartBackends(lab.Sites(9), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Stop)
	s := startSolo(t, 9, "")
	s.waitA("www.example.com.", "192.0.2.10", "192.0.2.11")

	cfgPath := filepath.Join(s.dir, "geodnsd.toml")
	good, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, append(append([]byte{}, good...), "\n[services.web2\n"...), 0o644)
	s.hup <- struct{}{}
	s.waitFor("the failed reload counted", func() error {
		return s.metrics("geodnsd_config_last_reload_successful 0", `geodnsd_config_reloads_total{result="error"} 1`)
	})
	// Asked once the reload has failed, not while it may still be running.
	if got, err := s.a("www.example.com."); err != nil || len(got) != 2 {
		t.Errorf("after a broken reload: %v %v", got, err)
	}

	extra := `
[services.shop]
names = ["shop.example.com"]
sites = ["dallas", "london"]
`
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(oneNodeConfig, 9, 5353, 8053, extra)), 0o644)
	s.hup <- struct{}{}
	// shop starts on dallas: up and in sync. (Listing london first would
	// not start it there: london has no sync check and serves nothing, so it
	// is not known to be in sync — a spec change never skips resync.)
	s.waitA("shop.example.com.", "192.0.2.10", "192.0.2.11")
	// The reload counts itself after it has handed the store the services,
	// so shop may answer a moment before the metrics say so.
	s.waitFor("the reload counted", func() error {
		return s.metrics("geodnsd_config_last_reload_successful 1", `geodnsd_config_reloads_total{result="ok"} 1`)
	})
	st, err := s.status()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sv := range st.Services {
		names = append(names, sv.Name)
	}
	if !slices.Equal(names, []string{"cas", "shop", "www"}) {
		t.Errorf("services in the replicated state after the reload: %v", names)
	}
	audited := false
	for _, h := range st.History {
		audited = audited || (h.Kind == "config" && h.Reason == "services added: shop")
	}
	if !audited {
		t.Errorf("the configuration change is not in the history: %+v", st.History)
	}
}

// metrics fails unless /metrics has every line of want.
func (s *soloNode) metrics(want ...string) error {
	r, err := http.Get("http://" + s.web + "/metrics")
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	for _, w := range want {
		if !strings.Contains(string(b), "\n"+w+"\n") {
			return fmt.Errorf("no %q in /metrics", w)
		}
	}
	return nil
}
