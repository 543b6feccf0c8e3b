package health

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the scheduler; labels come from configuration only (type, phase,
// site, endpoint, check, result), so they are bounded.
type metrics struct {
	duration *prometheus.HistogramVec // type, phase
	results  *prometheus.CounterVec   // site, check, result
	verdict  *prometheus.GaugeVec     // site, endpoint, check
	lateness prometheus.Histogram
	skipped  prometheus.Counter
	panics   prometheus.Counter
	checks   prometheus.Gauge
	inflight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "geodnsd", "health"
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "probe_duration_seconds",
			Help:    "Duration of probes by check type and phase (dns, connect, tls, first_byte, run, total).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type", "phase"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "probe_results_total",
			Help: "Probe results by site, check and result (success, warning, failure).",
		}, []string{"site", "check", "result"}),
		verdict: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "verdict",
			Help: "This node's verdict per check: 1 up (or in sync), 0 down (or not in sync), -1 unknown.",
		}, []string{"site", "endpoint", "check"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "probe_lateness_seconds",
			Help:    "How late probes start relative to their schedule (waiting for a concurrency slot included).",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "probes_skipped_total",
			Help: "Scheduled probes skipped because the previous run of the same check overran its slot.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "probe_panics_total",
			Help: "Probes that panicked (each counted as a failure).",
		}),
		checks: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "checks",
			Help: "Checks scheduled.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "probes_in_flight",
			Help: "Probes running now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.results, m.verdict, m.lateness, m.skipped, m.panics, m.checks, m.inflight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func verdictValue(v Verdict) float64 {
	switch v {
	case Up, InSync:
		return 1
	case Down, NotInSync:
		return 0
	default:
		return -1
	}
}
