// Package web is geodnsd's HTTP side: /metrics, /healthz and /readyz now,
// the public status page and the admin API later. It is the only package
// below cmd that imports chi.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the HTTP side. The zero value works: no registry means
// an empty private one, no Ready func means always ready.
type Options struct {
	// Registry is scraped at /metrics.
	Registry *prometheus.Registry
	// Ready reports why the node is not ready to serve, or nil when it is.
	Ready  func() error
	Logger *slog.Logger
	// Pprof mounts Go's profiler under /debug/pprof/.
	Pprof bool
}

// Handler returns the router.
func Handler(o Options) http.Handler {
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) {
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
	return r
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           Handler(o),
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
