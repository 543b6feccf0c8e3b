package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the cluster; labels are bounded (event kinds, results).
type metrics struct {
	isLeader    prometheus.Gauge
	hasQuorum   prometheus.Gauge
	applied     prometheus.Gauge
	freshVoters prometheus.GaugeFunc
	halted      prometheus.Gauge
	term        prometheus.Gauge
	lastContact prometheus.Gauge
	clockOffset prometheus.Gauge
	commit      prometheus.Histogram
	rejected    *prometheus.CounterVec // kind
	stepDowns   *prometheus.CounterVec // reason
	forwarded   *prometheus.CounterVec // result
	decisions   prometheus.Counter
	moves       *prometheus.CounterVec // by kind (failover, failback, drain) and result (committed, not_committed)
}

// newMetrics registers the cluster's metrics; fresh reads the fresh voters
// of the published state at scrape time.
func newMetrics(reg prometheus.Registerer, fresh func() float64) (*metrics, error) {
	const ns, sub = "geodnsd", "cluster"
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		isLeader:  g("is_leader", "1 if this node is the raft leader, else 0."),
		hasQuorum: g("has_quorum", "1 if this node is the leader or has heard from a leader within the contact timeout, else 0 (writes then fail with no_quorum)."),
		applied:   g("applied_index", "Raft log index of the last entry applied to this node's state."),
		freshVoters: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "fresh_voters",
			Help: "Voters heard from within vote_ttl, in this node's applied state."}, fresh),
		halted:      g("halted", "1 if this node's state machine met a log entry it cannot apply and stopped applying."),
		term:        g("raft_term", "Current raft term."),
		lastContact: g("raft_last_contact_seconds", "Seconds since this follower last heard from the leader (0 on the leader)."),
		clockOffset: g("clock_offset_seconds", "On the leader: median of the other fresh nodes' clock offsets from the leader's clock (theirs minus ours)."),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "commit_seconds",
			Help:    "Time from proposing an entry on the leader to its being applied there.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rejected_events_total",
			Help: "Log events the failover core rejected (invalid or refused), by kind.",
		}, []string{"kind"}),
		stepDowns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "step_downs_total",
			Help: "Leadership transfers this node started on purpose, by reason (clock_skew, halted).",
		}, []string{"reason"}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "forwarded_writes_total",
			Help: "Writes this follower forwarded to the leader, by result (ok, error).",
		}, []string{"result"}),
		decisions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "decisions_proposed_total",
			Help: "Decisions this node proposed as leader.",
		}),
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "decision_moves_total",
			Help: "Route moves this node proposed as leader, by kind (failover, failback, drain) and result (committed, not_committed); a committed move that the state machine found stale is ignored there.",
		}, []string{"kind", "result"}),
	}
	for _, c := range []prometheus.Collector{m.isLeader, m.hasQuorum, m.applied, m.freshVoters, m.halted, m.term, m.lastContact, m.clockOffset, m.commit, m.rejected, m.stepDowns, m.forwarded, m.decisions, m.moves} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
