package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ports the lab's backends listen on at each endpoint's probe address.
const (
	HTTPPort = 8080 // GET /healthz: 200 "ok"
	SMTPPort = 2525 // a 220 banner, EHLO, QUIT
	SyncPort = 8081 // GET /replication: {"site": ..., "items_behind": N} (site-wide, at a site's sync address)
)

// EndpointSpec is one simulated endpoint: the address DNS answers with and
// the loopback address its servers listen on.
type EndpointSpec struct {
	Name    string
	Address string     // e.g. 192.0.2.10 (never dialled)
	Probe   netip.Addr // a loopback address: 127.0.0.21
}

// SiteSpec is one simulated site.
type SiteSpec struct {
	Name      string
	Endpoints []EndpointSpec
	Sync      netip.Addr // where its replication JSON is served
	Lat, Lon  float64
}

// Backends runs every site's servers on loopback: per endpoint an HTTP
// health page and an SMTP banner, per site a replication JSON. Each can be
// stopped and started again (a stopped server's port refuses connections,
// as a dead host's would), and a site's replication lag set.
type Backends struct {
	log   *slog.Logger
	mu    sync.Mutex
	sites map[string]*siteState
	ctl   *http.Server
	ctlLn net.Listener
}

type siteState struct {
	spec   SiteSpec
	eps    map[string]*endpointState
	behind int
	sync   *server
}

type endpointState struct {
	spec EndpointSpec
	http *server
	smtp *server
}

// server is one listener that can be stopped and started again.
type server struct {
	addr  string
	serve func(net.Listener)
	ln    net.Listener
	done  chan struct{}
}

func (s *server) start() error {
	if s.ln != nil {
		return nil
	}
	// Go listens with SO_REUSEADDR: a port just closed by stop can be
	// bound again at once.
	var err error
	if s.ln, err = net.Listen("tcp", s.addr); err != nil {
		return err
	}
	s.done = make(chan struct{})
	ln, done := s.ln, s.done
	go func() { defer close(done); s.serve(ln) }()
	return nil
}

func (s *server) stop() {
	if s.ln == nil {
		return
	}
	s.ln.Close()
	<-s.done
	s.ln = nil
}

func (s *server) up() bool { return s.ln != nil }

// StartBackends starts every site's servers. Stop stops them.
func StartBackends(sites []SiteSpec, log *slog.Logger) (*Backends, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Backends{log: log, sites: map[string]*siteState{}}
	for _, sp := range sites {
		st := &siteState{spec: sp, eps: map[string]*endpointState{}}
		b.sites[sp.Name] = st
		for _, e := range sp.Endpoints {
			es := &endpointState{spec: e}
			name := e.Name
			es.http = &server{addr: netip.AddrPortFrom(e.Probe, HTTPPort).String(), serve: func(ln net.Listener) { serveHealth(ln, name) }}
			es.smtp = &server{addr: netip.AddrPortFrom(e.Probe, SMTPPort).String(), serve: func(ln net.Listener) { serveSMTP(ln, name) }}
			st.eps[e.Name] = es
		}
		if sp.Sync.IsValid() {
			site := sp.Name
			st.sync = &server{addr: netip.AddrPortFrom(sp.Sync, SyncPort).String(), serve: func(ln net.Listener) { b.serveSync(ln, site) }}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range b.sites {
		if err := b.setSiteLocked(st, true); err != nil {
			b.stopLocked()
			return nil, err
		}
	}
	return b, nil
}

// Stop stops every server, the control API included.
func (b *Backends) Stop() {
	if b.ctl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b.ctl.Shutdown(ctx)
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked()
}

func (b *Backends) stopLocked() {
	for _, st := range b.sites {
		b.setSiteLocked(st, false)
	}
}

func (b *Backends) setSiteLocked(st *siteState, up bool) error {
	for _, es := range st.eps {
		if err := setEndpoint(es, up); err != nil {
			return err
		}
	}
	if st.sync != nil {
		if !up {
			st.sync.stop()
		} else if err := st.sync.start(); err != nil {
			return err
		}
	}
	return nil
}

func setEndpoint(es *endpointState, up bool) error {
	if !up {
		es.http.stop()
		es.smtp.stop()
		return nil
	}
	if err := es.http.start(); err != nil {
		return err
	}
	return es.smtp.start()
}

// SetSite starts (up) or stops every server of a site, its replication
// JSON included (a site that burns loses everything).
func (b *Backends) SetSite(site string, up bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.sites[site]
	if !ok {
		return fmt.Errorf("no site %q", site)
	}
	b.log.Info("lab: site "+updown(up), "site", site)
	return b.setSiteLocked(st, up)
}

// SetEndpoint starts or stops one endpoint's servers.
func (b *Backends) SetEndpoint(site, endpoint string, up bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.sites[site]
	if !ok {
		return fmt.Errorf("no site %q", site)
	}
	es, ok := st.eps[endpoint]
	if !ok {
		return fmt.Errorf("site %s has no endpoint %q", site, endpoint)
	}
	b.log.Info("lab: endpoint "+updown(up), "site", site, "endpoint", endpoint)
	return setEndpoint(es, up)
}

// SetBehind sets how many items a site's replication is behind (0: in sync).
func (b *Backends) SetBehind(site string, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.sites[site]
	if !ok {
		return fmt.Errorf("no site %q", site)
	}
	if n < 0 {
		return fmt.Errorf("items behind must not be negative, got %d", n)
	}
	b.log.Info("lab: replication", "site", site, "items_behind", n)
	st.behind = n
	return nil
}

func updown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// State is what the control API shows.
type State struct {
	Sites []SiteView `json:"sites"`
}

// SiteView is one site's simulated state.
type SiteView struct {
	Name        string         `json:"name"`
	ItemsBehind int            `json:"items_behind"`
	SyncUp      bool           `json:"sync_up"`
	Endpoints   []EndpointView `json:"endpoints"`
}

// EndpointView is one endpoint's simulated state.
type EndpointView struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Probe   string `json:"probe"`
	Up      bool   `json:"up"`
}

// State returns the simulated state of every site, by name.
func (b *Backends) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out State
	for _, name := range sortedNames(b.sites) {
		st := b.sites[name]
		sv := SiteView{Name: name, ItemsBehind: st.behind, SyncUp: st.sync != nil && st.sync.up()}
		for _, e := range st.spec.Endpoints {
			es := st.eps[e.Name]
			sv.Endpoints = append(sv.Endpoints, EndpointView{Name: e.Name, Address: e.Address, Probe: e.Probe.String(), Up: es.http.up()})
		}
		out.Sites = append(out.Sites, sv)
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ServeControl serves the control API on addr until Stop:
//
//	GET  /                          the state as JSON
//	POST /SITE/down, /SITE/up       every server of a site
//	POST /SITE/ENDPOINT/down, /up   one endpoint's servers
//	POST /SITE/behind/N             the site's replication lag (0: in sync)
func (b *Backends) ServeControl(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lab control: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(b.State())
	})
	reply := func(w http.ResponseWriter, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		io.WriteString(w, "ok\n")
	}
	mux.HandleFunc("POST /{site}/{state}", func(w http.ResponseWriter, r *http.Request) {
		up, ok := parseUpDown(r.PathValue("state"))
		if !ok {
			http.Error(w, "want /SITE/up or /SITE/down", http.StatusBadRequest)
			return
		}
		reply(w, b.SetSite(r.PathValue("site"), up))
	})
	mux.HandleFunc("POST /{site}/{endpoint}/{state}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("endpoint") == "behind" {
			n, err := strconv.Atoi(r.PathValue("state"))
			if err != nil {
				http.Error(w, "want /SITE/behind/N with N a number", http.StatusBadRequest)
				return
			}
			reply(w, b.SetBehind(r.PathValue("site"), n))
			return
		}
		up, ok := parseUpDown(r.PathValue("state"))
		if !ok {
			http.Error(w, "want /SITE/ENDPOINT/up or /SITE/ENDPOINT/down", http.StatusBadRequest)
			return
		}
		reply(w, b.SetEndpoint(r.PathValue("site"), r.PathValue("endpoint"), up))
	})
	b.ctlLn = ln
	b.ctl = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go b.ctl.Serve(ln)
	return ln.Addr(), nil
}

func parseUpDown(s string) (up, ok bool) {
	switch s {
	case "up":
		return true, true
	case "down":
		return false, true
	}
	return false, false
}

func serveHealth(ln net.Listener, name string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "ok %s\n", name)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	srv.Serve(ln) // returns when the listener is closed
}

func (b *Backends) serveSync(ln net.Listener, site string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/replication", func(w http.ResponseWriter, _ *http.Request) {
		b.mu.Lock()
		n := b.sites[site].behind
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"site": site, "items_behind": n})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	srv.SetKeepAlivesEnabled(false)
	srv.Serve(ln)
}

// serveSMTP answers each connection with a 220 banner, EHLO/HELO with 250,
// QUIT with 221 and anything else with 502, as a mail front end's listener
// does for a monitoring probe.
func serveSMTP(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "220 %s.lab.example.com ESMTP geodnsd lab\r\n", name)
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				cmd := strings.ToUpper(strings.TrimSpace(line))
				switch {
				case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
					fmt.Fprintf(c, "250 %s.lab.example.com\r\n", name)
				case cmd == "QUIT":
					io.WriteString(c, "221 bye\r\n")
					return
				default:
					io.WriteString(c, "502 not implemented\r\n")
				}
			}
		}()
	}
}
