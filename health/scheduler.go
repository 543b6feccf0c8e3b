package health

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Scheduler; the zero value works.
type Options struct {
	// Logger receives verdict changes (Info) and probe panics (Warn); nil discards.
	Logger *slog.Logger
	// Registry receives the metrics; nil keeps them in a private registry.
	Registry *prometheus.Registry
	// MaxConcurrent bounds the probes running at once (default 512). A probe
	// that waits for a slot starts late; lateness is a metric.
	MaxConcurrent int
	// History is the number of results kept per check for Snapshot (default 10).
	History int
	// OnChange receives an Observation each time a check's verdict changes;
	// for a sync check also when the value it reads changes while its
	// verdict holds (same Verdict, the new Reason: "items_behind = 12" after
	// "connection refused"); and when a check that had a verdict is removed by Update (Verdict
	// Unknown, reason "removed from configuration"). It is called from one
	// goroutine, never concurrently and never with the scheduler's locks held,
	// in the order the changes happened (so per check, in verdict order). A
	// slow OnChange delays later observations, never probes. Observations
	// still queued when Run's context ends are delivered before Run returns.
	OnChange func(Observation)
}

// Scheduler runs every check at its interval and keeps its verdict.
//
// Each check starts at an offset within its interval given by a hash of its
// key (the same on every start, different between checks, so that probes are
// spread and restarts do not synchronise them), then runs once per interval.
// A check never runs twice at once: when a probe overruns, the missed slots
// are skipped (and counted). A probe that panics counts as a failure.
//
// Every check is Unknown until its first verdict: rise consecutive successes
// make it Up, fall consecutive failures make it Down (InSync / NotInSync for
// sync checks).
type Scheduler struct {
	log      *slog.Logger
	m        *metrics
	sem      chan struct{}
	history  int
	onChange func(Observation)

	mu      sync.Mutex
	entries map[Key]*entry
	dying   map[Key]chan struct{} // loops of removed checks, until a check of the same key is added again
	runCtx  context.Context       // set by Run
	stopped bool
	wg      sync.WaitGroup

	qmu   sync.Mutex
	queue []Observation
	kick  chan struct{}
}

// entry is one check and its state. check, gen and st are guarded by mu;
// cancel and done by the Scheduler's mu.
type entry struct {
	mu    sync.Mutex
	check Check
	gen   uint64 // incremented when check changes; results of older runs are dropped
	st    state

	cancel context.CancelFunc // of the running loop; nil when none
	done   chan struct{}      // closed when that loop has returned
}

// New returns a Scheduler with no checks; give it checks with Update and
// start it with Run.
func New(opts Options) (*Scheduler, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("health metrics: %w", err)
	}
	maxc := opts.MaxConcurrent
	if maxc <= 0 {
		maxc = 512
	}
	hist := opts.History
	if hist <= 0 {
		hist = 10
	}
	return &Scheduler{
		log:      log,
		m:        m,
		sem:      make(chan struct{}, maxc),
		history:  hist,
		onChange: opts.OnChange,
		entries:  make(map[Key]*entry),
		dying:    make(map[Key]chan struct{}),
		kick:     make(chan struct{}, 1),
	}, nil
}

// Update replaces the set of checks. A check whose key, Spec, Target and
// timing are unchanged keeps running untouched. A changed check keeps its
// verdict and history, restarts its schedule, and (if its Spec or Target
// changed) its consecutive counts: the new probe's results must cross a
// threshold to change the verdict. New checks start Unknown; removed checks
// stop. On error nothing changes.
func (s *Scheduler) Update(checks []Check) error {
	seen := make(map[Key]bool, len(checks))
	for _, c := range checks {
		switch {
		case seen[c.Key]:
			return fmt.Errorf("check %s: listed twice", c.Key)
		case c.Probe == nil:
			return fmt.Errorf("check %s: no probe", c.Key)
		case c.Interval <= 0 || c.Timeout <= 0:
			return fmt.Errorf("check %s: interval %s and timeout %s must be positive", c.Key, c.Interval, c.Timeout)
		case c.Rise < 1 || c.Fall < 1:
			return fmt.Errorf("check %s: rise %d and fall %d must be at least 1", c.Key, c.Rise, c.Fall)
		}
		seen[c.Key] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range checks {
		e := s.entries[c.Key]
		if e == nil {
			e = &entry{check: c, done: s.dying[c.Key]}
			delete(s.dying, c.Key)
			s.entries[c.Key] = e
			s.m.verdict.WithLabelValues(c.Site, c.Endpoint, c.Check).Set(verdictValue(Unknown))
			s.start(e, time.Now())
			continue
		}
		e.mu.Lock()
		old := e.check
		same := old.Spec == c.Spec && old.Target == c.Target && old.Type == c.Type && old.Sync == c.Sync
		timing := old.Interval == c.Interval && old.Timeout == c.Timeout && old.Rise == c.Rise && old.Fall == c.Fall
		if same && timing {
			e.mu.Unlock()
			continue
		}
		e.check = c
		e.gen++
		if !same {
			e.st.successes, e.st.failures = 0, 0
		}
		e.mu.Unlock()
		s.log.Info("check changed", "site", c.Site, "endpoint", c.Endpoint, "check", c.Check, "probe_changed", !same)
		s.start(e, time.Now())
	}
	for k, e := range s.entries {
		if seen[k] {
			continue
		}
		if e.cancel != nil {
			e.cancel()
		}
		delete(s.entries, k)
		if e.done != nil {
			s.dying[k] = e.done
		}
		s.m.verdict.DeleteLabelValues(k.Site, k.Endpoint, k.Check)
		e.mu.Lock()
		e.gen++
		was := e.st.verdict
		if was != Unknown {
			s.enqueue(Observation{Site: k.Site, Endpoint: k.Endpoint, Check: k.Check, Verdict: Unknown,
				Reason: "removed from configuration", Time: time.Now()})
		}
		e.mu.Unlock()
		s.log.Info("check removed", "site", k.Site, "endpoint", k.Endpoint, "check", k.Check, "from", was, "to", Unknown)
	}
	s.m.checks.Set(float64(len(s.entries)))
	return nil
}

// start (re)starts e's loop if the scheduler is running, with its slots at
// base + offset + k intervals; the new loop waits for the previous one to
// return, so that a check never runs twice at once. s.mu must be held.
func (s *Scheduler) start(e *entry, base time.Time) {
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
	if s.runCtx == nil || s.stopped {
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	prev, done := e.done, make(chan struct{})
	e.cancel, e.done = cancel, done
	e.mu.Lock()
	c, gen := e.check, e.gen
	e.mu.Unlock()
	s.wg.Add(1)
	go s.loop(ctx, e, gen, c, base, prev, done)
}

// Run runs the checks until ctx is done, then stops every probe (their
// contexts are cancelled), waits for them, delivers the observations still
// queued, and returns. Run may be called once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("health: Run called twice")
	}
	s.runCtx = ctx
	keys := make([]Key, 0, len(s.entries))
	for k := range s.entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	base := time.Now() // one grid for all: starting 10 000 loops takes a while
	for _, k := range keys {
		s.start(s.entries[k], base)
	}
	s.mu.Unlock()

	stop, delivered := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(delivered)
		for {
			select {
			case <-s.kick:
				s.deliver()
			case <-stop:
				s.deliver()
				return
			}
		}
	}()
	<-ctx.Done()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
	close(stop)
	<-delivered
	return nil
}

// offset is where in its interval a check first runs: a hash of its key.
func offset(k Key, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(k.Site + "\x00" + k.Endpoint + "\x00" + k.Check))
	return time.Duration(h.Sum64() % uint64(interval))
}

func (s *Scheduler) loop(ctx context.Context, e *entry, gen uint64, c Check, base time.Time, prev <-chan struct{}, done chan<- struct{}) {
	defer s.wg.Done()
	defer close(done)
	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return
		}
	}
	next := base.Add(offset(c.Key, c.Interval))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		started := time.Now()
		s.m.lateness.Observe(started.Sub(next).Seconds())
		s.m.inflight.Inc()
		res := s.probe(ctx, c)
		dur := time.Since(started)
		s.m.inflight.Dec()
		<-s.sem
		if ctx.Err() != nil {
			return // stopped or replaced: this result may be an artefact of the cancellation
		}
		s.record(e, gen, c, started, dur, res)

		next = next.Add(c.Interval)
		if behind := time.Since(next); behind >= c.Interval {
			n := behind / c.Interval
			next = next.Add(n * c.Interval)
			s.m.skipped.Add(float64(n))
		}
		timer.Reset(time.Until(next))
	}
}

// probe runs one probe with the check's timeout; a panic is a failure.
func (s *Scheduler) probe(ctx context.Context, c Check) (res Result) {
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			s.m.panics.Inc()
			s.log.Warn("probe panicked", "site", c.Site, "endpoint", c.Endpoint, "check", c.Check,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res = Result{Err: fmt.Errorf("probe panicked: %v", r)}
		}
	}()
	start := time.Now()
	res = c.Probe(pctx, c.Target)
	if d := time.Since(start); res.Err == nil && d > c.Timeout {
		res.Err = fmt.Errorf("took %s, longer than the timeout of %s", d.Round(time.Millisecond), c.Timeout)
	}
	return res
}

func (s *Scheduler) record(e *entry, gen uint64, c Check, started time.Time, dur time.Duration, res Result) {
	rec := Record{Time: started, Duration: dur, OK: res.Err == nil, Reason: res.Reason(), Warning: res.Warning}
	s.m.duration.WithLabelValues(c.Type, "total").Observe(dur.Seconds())
	for _, p := range res.Phases {
		s.m.duration.WithLabelValues(c.Type, p.Name).Observe(p.Duration.Seconds())
	}
	result := "success"
	switch {
	case res.Err != nil:
		result = "failure"
	case res.Warning != "":
		result = "warning"
	}
	s.m.results.WithLabelValues(c.Site, c.Check, result).Inc()

	e.mu.Lock()
	if e.gen != gen {
		e.mu.Unlock()
		return
	}
	reads := e.st.readsChanged(rec, c.Sync)
	changed, from := e.st.record(rec, c.Rise, c.Fall, s.history, c.Sync)
	var o Observation
	if !changed && reads {
		s.enqueue(Observation{Site: c.Site, Endpoint: c.Endpoint, Check: c.Check, Verdict: e.st.verdict,
			Reason: e.st.reason, Time: rec.Time.Add(rec.Duration)})
	}
	if changed {
		o = Observation{Site: c.Site, Endpoint: c.Endpoint, Check: c.Check, Verdict: e.st.verdict,
			Reason: e.st.reason, Time: e.st.since}
		s.enqueue(o) // under e.mu: observations of one check are queued in order
		s.m.verdict.WithLabelValues(c.Site, c.Endpoint, c.Check).Set(verdictValue(o.Verdict))
	}
	e.mu.Unlock()
	if changed {
		s.log.Info("verdict changed", "site", c.Site, "endpoint", c.Endpoint, "check", c.Check,
			"from", from, "to", o.Verdict, "reason", o.Reason)
	}
}

func (s *Scheduler) enqueue(o Observation) {
	if s.onChange == nil {
		return
	}
	s.qmu.Lock()
	s.queue = append(s.queue, o)
	s.qmu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Scheduler) deliver() {
	for {
		s.qmu.Lock()
		q := s.queue
		s.queue = nil
		s.qmu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, o := range q {
			s.onChange(o)
		}
	}
}

// Status is the current state of one check.
type Status struct {
	Key
	Type   string
	Sync   bool
	Target string // probed host:port ("" for a check without one)

	Verdict Verdict
	Since   time.Time // when Verdict was reached; zero while Unknown
	Reason  string    // why Verdict (at the change), or the latest result consistent with it
	// Warning is the latest result's warning (a certificate close to expiry), if any.
	Warning string
	// Successes and Failures are the current consecutive counts.
	Successes, Failures int
	Probes              uint64   // results recorded
	History             []Record // the last results, oldest first
}

// Snapshot is the state of every check, sorted by key.
func (s *Scheduler) Snapshot() []Status {
	s.mu.Lock()
	entries := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		entries = append(entries, e)
	}
	s.mu.Unlock()
	out := make([]Status, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		c := e.check
		st := Status{
			Key: c.Key, Type: c.Type, Sync: c.Sync,
			Verdict: e.st.verdict, Since: e.st.since, Reason: e.st.reason,
			Successes: e.st.successes, Failures: e.st.failures, Probes: e.st.probes,
			History: e.st.last(),
		}
		if len(st.History) > 0 {
			st.Warning = st.History[len(st.History)-1].Warning
		}
		e.mu.Unlock()
		if c.Target.Host != "" {
			st.Target = c.Target.Host
			if c.Target.Port != 0 {
				st.Target = c.Target.HostPort()
			}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.less(out[j].Key) })
	return out
}
