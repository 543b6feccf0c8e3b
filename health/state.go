package health

import (
	"fmt"
	"time"
)

// Record is one probe's result, kept in a check's history.
type Record struct {
	Time     time.Time     // when the probe started
	Duration time.Duration // how long it took
	OK       bool
	Reason   string
	Warning  string
}

// state is the verdict of one check and how it got there: consecutive
// successes and failures against the rise and fall thresholds, and the last
// results. It is a plain value with no locking and no clock of its own.
type state struct {
	verdict   Verdict
	since     time.Time // when verdict was reached; zero while unknown
	reason    string
	lastRaw   string // the previous result's own reason (not the threshold text)
	successes int    // consecutive
	failures  int    // consecutive
	history   []Record
	next      int // ring position in history once full
	probes    uint64
}

// record applies one result. It returns true when the verdict changed
// (from is the previous verdict).
//
// From Unknown, rise consecutive successes make the check Up and fall
// consecutive failures make it Down; from Up, fall consecutive failures make it
// Down; from Down, rise consecutive successes make it Up. A sync check says
// InSync and NotInSync instead.
func (s *state) record(r Record, rise, fall, keep int, sync bool) (changed bool, from Verdict) {
	s.probes++
	defer func() { s.lastRaw = r.Reason }()
	if keep > 0 {
		if len(s.history) < keep {
			s.history = append(s.history, r)
		} else {
			s.history[s.next%len(s.history)] = r
			s.next = (s.next + 1) % len(s.history)
		}
	}
	up, down := Up, Down
	if sync {
		up, down = InSync, NotInSync
	}
	from = s.verdict
	if r.OK {
		s.successes++
		s.failures = 0
		if s.verdict != up && s.successes >= rise {
			s.set(up, r.Time.Add(r.Duration), thresholdReason(s.successes, "success", r.Reason))
			return true, from
		}
		if s.verdict == up {
			s.reason = r.Reason
		}
	} else {
		s.failures++
		s.successes = 0
		if s.verdict != down && s.failures >= fall {
			s.set(down, r.Time.Add(r.Duration), thresholdReason(s.failures, "failure", r.Reason))
			return true, from
		}
		if s.verdict == down {
			s.reason = r.Reason
		}
	}
	return false, from
}

func (s *state) set(v Verdict, at time.Time, reason string) {
	s.verdict, s.since, s.reason = v, at, reason
}

func thresholdReason(n int, what, last string) string {
	if n != 1 {
		what = map[string]string{"success": "successes", "failure": "failures"}[what]
	}
	return fmt.Sprintf("%d consecutive %s: %s", n, what, last)
}

// last is the history oldest first.
func (s *state) last() []Record {
	out := make([]Record, 0, len(s.history))
	out = append(out, s.history[s.next:]...)
	return append(out, s.history[:s.next]...)
}

// readsChanged reports whether a decided sync check's latest result reads
// something else than the one before while its verdict holds: the value
// an operator and the promote guard quote ("items_behind = 12") moved.
// Call it before record.
func (s *state) readsChanged(r Record, sync bool) bool {
	return sync && s.verdict != Unknown && s.probes > 0 && r.Reason != s.lastRaw
}
