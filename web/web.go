// Package web is geodnsd's HTTP side: the public status documents (own
// schema, Statuspage v2, an HTML page), the admin API with bearer tokens,
// /metrics, /healthz and /readyz. It reads the node through the small
// Backend interface and is the only package that imports chi.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/web/api"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the HTTP side. The zero value works: no registry means
// an empty private one, no Ready func means always ready, no Backend means
// only /metrics, /healthz and /readyz are served.
type Options struct {
	// Registry is scraped at /metrics; the handler's own metrics
	// (geodnsd_web_*) are registered on it.
	Registry *prometheus.Registry
	// Ready reports why the node is not ready to serve, or nil when it is.
	Ready  func() error
	Logger *slog.Logger
	// Pprof mounts Go's profiler under /debug/pprof/.
	Pprof bool

	// Backend is the node's replicated state and command path. With it the
	// public documents (/, /status.json, /api/v2/...) and the admin API
	// (/api/v1/...) are served.
	Backend Backend
	// Node is this node's id, shown in the documents.
	Node string
	// Tokens are the admin API's bearer tokens (http.tokens). None: every
	// admin request is 401.
	Tokens []Token
	// PageName is the status page's title and the Statuspage page name;
	// empty means "geodnsd".
	PageName string
	// PageURL is the Statuspage page url (and incidents' shortlink).
	PageURL string
	// PageRefresh is how often the HTML page reloads itself; zero means 10s.
	PageRefresh time.Duration
	// HistoryLen is how many history entries /status.json and the page
	// show; zero means 20.
	HistoryLen int
	// PublicRate and PublicBurst limit the public documents per client
	// address (IPv6: per /64), in requests per second; zero means 10/s with
	// a burst of 20 (config's http.status_rate/status_burst defaults), a
	// negative rate means no limit (config's 0).
	PublicRate  float64
	PublicBurst int
	// AdminRate and AdminBurst limit /api/v1 per client address; zero
	// means 5/s with a burst of 10 (config's http.admin_rate/admin_burst
	// defaults), a negative rate means no limit (config's 0).
	AdminRate  float64
	AdminBurst int
	// CommandTimeout bounds a command: commit, and with ?wait=all its
	// application on every reachable node; zero means 10s.
	CommandTimeout time.Duration
	// DocRefresh bounds how old the volatile fields of the public documents
	// may be: generated_at, state_time, applied_index, nodes' last_seen,
	// clock and applied_index, votes' times, the stable_for progress of a
	// blocked fail-back. A state change that moves only those does not
	// render the documents again (their ETag stays, so pollers get 304)
	// until the last render is DocRefresh old; any other change renders at
	// once. Zero means 30s; negative means every state change renders.
	DocRefresh time.Duration
	// Now is the clock (generated_at, command times, rate limits); nil
	// means time.Now.
	Now func() time.Time
}

func (o *Options) now() time.Time { return o.Now() }

func (o *Options) defaults() {
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.PageName == "" {
		o.PageName = "geodnsd"
	}
	if o.PageRefresh <= 0 {
		o.PageRefresh = 10 * time.Second
	}
	if o.HistoryLen <= 0 {
		o.HistoryLen = 20
	}
	if o.PublicRate == 0 {
		o.PublicRate = 10
	}
	if o.PublicBurst <= 0 {
		o.PublicBurst = 20
	}
	if o.AdminRate == 0 {
		o.AdminRate = 5
	}
	if o.AdminBurst <= 0 {
		o.AdminBurst = 10
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DocRefresh == 0 {
		o.DocRefresh = 30 * time.Second
	}
}

// Handler returns the router:
//
//	GET /healthz, /readyz, /metrics        (always)
//	GET /, /status.json                    public, rate limited per client
//	GET /api/v2/{status,summary,components,incidents}.json
//	    /api/v2/incidents/unresolved.json, /api/v2/scheduled-maintenances.json
//	                                       Statuspage v2, public, rate limited
//	POST /api/v1/{promote,failover,drain,undrain,mode,mark-synced,freeze,thaw}[?wait=all]
//	                                       role operator
//	GET /api/v1/{status,history,nodes}     role read
//
// Public documents carry ETag (304 on If-None-Match), Cache-Control
// max-age=5 and Access-Control-Allow-Origin *; they are rendered once per
// state change a reader cares about (volatile times and indexes are
// refreshed at most every Options.DocRefresh) and served from memory. Admin errors are JSON (api.ErrorBody).
// It fails on invalid tokens (naming http.tokens[i] and the field).
func Handler(o Options) (http.Handler, error) {
	o.defaults()
	tokens, err := compileTokens(o.Tokens)
	if err != nil {
		return nil, err
	}
	m := newMetrics(o.Registry)
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		m.requests.WithLabelValues("not_found", "404").Inc()
		if strings.HasPrefix(req.URL.Path, "/api/") {
			writeError(w, http.StatusNotFound, api.ErrorBody{Error: api.ReasonNotFound, Message: "no such endpoint: " + req.URL.Path})
			return
		}
		http.NotFound(w, req)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		m.requests.WithLabelValues("bad_method", "405").Inc()
		writeError(w, http.StatusMethodNotAllowed, api.ErrorBody{Error: api.ReasonBadMethod, Message: req.Method + " is not allowed on " + req.URL.Path})
	})
	r.With(count(m, "healthz")).Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	r.With(count(m, "readyz")).Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if o.Ready != nil {
			if err := o.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %v\n", err)
				return
			}
		}
		io.WriteString(w, "ready\n")
	})
	r.Handle("/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	if o.Pprof {
		r.Mount("/debug", middleware.Profiler())
	}
	if o.Backend == nil {
		return r, nil
	}
	rd := &renderer{o: &o, m: m}
	register(o.Registry, prometheus.Collector(newViewCollector(rd)))
	public := limit(m, "public", newLimiter(o.PublicRate, o.PublicBurst, o.Now))
	docs := map[string]string{
		"/":                                   docPage,
		"/status.json":                        docStatus,
		"/api/v2/status.json":                 docSPStatus,
		"/api/v2/summary.json":                docSPSummary,
		"/api/v2/components.json":             docSPComponents,
		"/api/v2/incidents.json":              docSPIncidents,
		"/api/v2/incidents/unresolved.json":   docSPUnresolved,
		"/api/v2/scheduled-maintenances.json": docSPMaint,
	}
	for path, name := range docs {
		r.With(count(m, name), public).Get(path, rd.serveDoc(name))
		r.With(count(m, name)).Options(path, preflight)
	}
	a := &admin{o: &o, tokens: tokens, r: rd, m: m, log: o.Logger}
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(limit(m, "admin", newLimiter(o.AdminRate, o.AdminBurst, o.Now)))
		r.With(count(m, "api_status"), a.require(RoleRead)).Get("/status", rd.serveDoc(docStatus))
		r.With(count(m, "api_history"), a.require(RoleRead)).Get("/history", a.history)
		r.With(count(m, "api_nodes"), a.require(RoleRead)).Get("/nodes", a.nodes)
		for _, op := range api.Ops {
			r.With(count(m, "api_command"), a.require(RoleOperator)).Post("/"+op, func(w http.ResponseWriter, req *http.Request) {
				a.command(w, req, op)
			})
		}
	})
	return r, nil
}

// preflight answers a CORS preflight for the public documents.
func preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "If-None-Match")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// count counts requests by handler name and status code.
func count(m *metrics, handler string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(handler, strconv.Itoa(code)).Inc()
		})
	}
}

// limit refuses a client over its rate with 429 and Retry-After.
func limit(m *metrics, surface string, l *limiter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ok, wait := l.allow(r.RemoteAddr); !ok {
				m.rateLimited.WithLabelValues(surface).Inc()
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				writeError(w, http.StatusTooManyRequests, api.ErrorBody{Error: api.ReasonRateLimited,
					Message: fmt.Sprintf("too many requests from this address; retry in %s", wait.Round(time.Millisecond))})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Server is the HTTP listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Listen binds addr and serves Handler(o) on it until Shutdown.
func Listen(addr string, o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := Handler(o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		},
		ln:  ln,
		err: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.err <- err
	}()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting and waits for in-flight requests, bounded by ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.err; err == nil {
		err = serr
	}
	return err
}
