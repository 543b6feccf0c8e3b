package health

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestCompile(t *testing.T) {
	cfg, err := config.Load("../config/testdata/health.toml")
	if err != nil {
		t.Fatal(err)
	}
	checks, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Check{}
	for _, c := range checks {
		got[c.Key.String()] = c
	}
	cases := []struct {
		key    string
		target Target
		sync   bool
	}{
		// Per endpoint, at the probe address; a probe port overrides the check's port.
		{"dallas/dal1/owa", Target{Site: "dallas", Endpoint: "dal1", Address: "192.0.2.10", Host: "127.0.0.1", Port: 443}, false},
		{"dallas/192.0.2.11/owa", Target{Site: "dallas", Endpoint: "192.0.2.11", Address: "192.0.2.11", Host: "127.0.0.1", Port: 8443}, false},
		{"dallas/192.0.2.12/smtp", Target{Site: "dallas", Endpoint: "192.0.2.12", Address: "192.0.2.12", Host: "192.0.2.12", Port: 25}, false},
		{"london/mail.london.example.net/smtp", Target{Site: "london", Endpoint: "mail.london.example.net", Address: "mail.london.example.net", Host: "mail.london.example.net", Port: 25}, false},
		{"dallas/dal1/script", Target{Site: "dallas", Endpoint: "dal1", Address: "192.0.2.10", Host: "127.0.0.1"}, false},
		{"dallas/192.0.2.11/script", Target{Site: "dallas", Endpoint: "192.0.2.11", Address: "192.0.2.11", Host: "127.0.0.1"}, false},
		// Site-wide: once, at the address or url.
		{"dallas/cert", Target{Site: "dallas", Host: "cas.example.com", Port: 443}, false},
		{"dallas/sync", Target{Site: "dallas", Host: "dallas-dag.example.com", Port: 443}, true},
		{"losangeles/sync", Target{Site: "losangeles"}, true},
	}
	for _, tc := range cases {
		c, ok := got[tc.key]
		if !ok {
			t.Errorf("no check %s", tc.key)
			continue
		}
		if c.Target != tc.target || c.Sync != tc.sync {
			t.Errorf("%s: target %+v sync %v, want %+v %v", tc.key, c.Target, c.Sync, tc.target, tc.sync)
		}
	}
	// dallas: 5 per-endpoint checks x 3 endpoints + cert + sync; losangeles:
	// owa + sync; london: smtp.
	if len(checks) != 5*3+2+2+1 {
		t.Errorf("%d checks", len(checks))
	}
	if c := got["dallas/dal1/smtp"]; c.Interval != 10*time.Second || c.Timeout != 8*time.Second || c.Rise != 3 || c.Fall != 5 {
		t.Errorf("smtp timing %+v", c)
	}
	// Compiling again gives the same specs: a reload of the same file changes nothing.
	again, _ := Compile(cfg)
	for i := range checks {
		if checks[i].Spec != again[i].Spec || checks[i].Key != again[i].Key {
			t.Fatalf("spec of %s differs between two compiles", checks[i].Key)
		}
	}
}

// TestConfigToObservation wires config, Compile, the scheduler and a real
// probe against a loopback server whose health changes.
func TestConfigToObservation(t *testing.T) {
	var healthy = make(chan bool, 1)
	healthy <- true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := <-healthy
		healthy <- ok
		if !ok || r.Host != "cas.example.com" {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	src := fmt.Sprintf(`
[node]
id = "ns1"
[dns]
listen = ["127.0.0.1:53"]
[checks]
interval = "1s"
rise = 1
fall = 1
[sites.dallas]
endpoints = [{ name = "dal1", address = "192.0.2.10", probe = %q }]
[[sites.dallas.checks]]
name = "owa"
type = "http"
host = "cas.example.com"
`, srv.Listener.Addr().String())
	cfg, err := config.Parse([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	checks, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	obs := make(chan Observation, 10)
	s, err := New(Options{OnChange: func(o Observation) { obs <- o }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(checks); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	next := func() Observation {
		t.Helper()
		select {
		case o := <-obs:
			return o
		case <-time.After(10 * time.Second):
			t.Fatal("no observation within 10 s")
			return Observation{}
		}
	}
	if o := next(); o.Verdict != Up || o.Site != "dallas" || o.Endpoint != "dal1" || o.Check != "owa" || o.Reason != "1 consecutive success: status 200" {
		t.Errorf("first observation %+v", o)
	}
	<-healthy
	healthy <- false
	if o := next(); o.Verdict != Down || !strings.Contains(o.Reason, "status 503, want 2xx") {
		t.Errorf("second observation %+v", o)
	}
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Registry: reg}); err == nil {
		t.Error("a second scheduler registered the same metrics without error")
	}
	// Give every vector a series so that it is gathered and linted.
	s.m.duration.WithLabelValues("http", "total").Observe(0.01)
	s.m.results.WithLabelValues("dallas", "owa", "success").Inc()
	s.m.verdict.WithLabelValues("dallas", "dal1", "owa").Set(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestCombine(t *testing.T) {
	cases := []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Unknown},
		{[]Verdict{Up, Up}, Up},
		{[]Verdict{Up, Unknown}, Unknown},
		{[]Verdict{Up, Unknown, Down}, Down},
		{[]Verdict{InSync, Up}, Up},
		{[]Verdict{NotInSync}, Down},
	}
	for _, tc := range cases {
		if got := Combine(tc.in...); got != tc.want {
			t.Errorf("Combine(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
