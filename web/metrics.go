package web

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the HTTP side's own: geodnsd_web_*.
type metrics struct {
	requests     *prometheus.CounterVec // handler, code
	authFailures *prometheus.CounterVec // reason
	rateLimited  *prometheus.CounterVec // surface
	commands     *prometheus.CounterVec // op, result
	renders      prometheus.Counter
	renderSkips  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "web",
			Name: "requests_total", Help: "HTTP requests answered, by handler and status code."}, []string{"handler", "code"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "web",
			Name: "auth_failures_total", Help: "Admin API requests refused by authentication or role: missing or invalid token (401), forbidden role (403)."},
			[]string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "web",
			Name: "rate_limited_total", Help: "Requests refused with 429 by the per-client-address limit, by surface (public, admin)."},
			[]string{"surface"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "web",
			Name: "commands_total", Help: "Operator commands received by this node, by op and result (accepted, refused, invalid, unavailable, error)."},
			[]string{"op", "result"}),
		renders: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "web",
			Name: "renders_total", Help: "Times the public documents were rendered (once per state change a reader cares about that was asked for, or to refresh volatile fields)."}),
		renderSkips: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "geodnsd", Subsystem: "web",
			Name: "render_skips_total", Help: "State changes seen by a request that moved only volatile fields (times, indexes) within the refresh bound: the documents and their ETags were kept."}),
	}
	m.requests = register(reg, m.requests)
	m.authFailures = register(reg, m.authFailures)
	m.rateLimited = register(reg, m.rateLimited)
	m.commands = register(reg, m.commands)
	m.renders = register(reg, m.renders)
	m.renderSkips = register(reg, m.renderSkips)
	for _, r := range []string{"missing", "invalid", "forbidden"} {
		m.authFailures.WithLabelValues(r)
	}
	for _, s := range []string{"public", "admin"} {
		m.rateLimited.WithLabelValues(s)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same description (a second handler on one registry shares them).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old
			}
		}
		panic(err) // a programming error: two different metrics with one name
	}
	return c
}
