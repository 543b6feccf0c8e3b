// Package health probes every site's endpoints from this node and turns the
// results into verdicts with rise/fall thresholds: the probers (http, https,
// tcp, tls, smtp, dns, exec and the sync check), the scheduler that runs them,
// and the observations it emits when a verdict changes. It knows nothing of
// DNS serving, failover or raft.
package health

import (
	"context"
	"net"
	"strconv"
	"time"
)

// Verdict is what this node concludes about one check.
type Verdict uint8

const (
	// Unknown: no verdict yet. Every check starts unknown and stays so until
	// rise consecutive successes or fall consecutive failures.
	Unknown Verdict = iota
	// Up: the check passed rise times in a row (and has not failed fall times since).
	Up
	// Down: the check failed fall times in a row.
	Down
	// InSync is Up for a sync check: the site's data may be trusted as primary.
	InSync
	// NotInSync is Down for a sync check.
	NotInSync
)

var verdictNames = [...]string{"unknown", "up", "down", "in_sync", "not_in_sync"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// MarshalText implements encoding.TextMarshaler ("up", "in_sync", ...).
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// OK reports whether v is Up or InSync.
func (v Verdict) OK() bool { return v == Up || v == InSync }

// Combine is the verdict of an endpoint from the verdicts of its checks (its
// own and its site's site-wide checks): Down if any is down, Up if all are
// up, Unknown otherwise (and for no verdicts at all).
func Combine(vs ...Verdict) Verdict {
	out := Up
	for _, v := range vs {
		switch v {
		case Down, NotInSync:
			return Down
		case Up, InSync:
		default:
			out = Unknown
		}
	}
	if len(vs) == 0 {
		return Unknown
	}
	return out
}

// Observation is one change of this node's verdict on one check: plain
// values, for the cluster to turn into votes.
type Observation struct {
	Site     string
	Endpoint string // endpoint name; "" for a site-wide check and for the sync check
	Check    string // check name; "sync" for the sync check
	Verdict  Verdict
	Reason   string
	Time     time.Time
}

// Target is what one probe is aimed at.
type Target struct {
	Site     string
	Endpoint string // endpoint name, "" when site-wide
	Address  string // the address DNS answers with, "" when site-wide
	Host     string // probed host: an IP address or a host name
	Port     int    // probed port; 0 when the check has none (exec)
}

// HostPort is the probed address as host:port.
func (t Target) HostPort() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Phase is the duration of one step of a probe.
type Phase struct {
	Name     string // dns, connect, tls, first_byte
	Duration time.Duration
}

// Result is the outcome of one probe.
type Result struct {
	// Err says what failed; nil means success.
	Err error
	// Warning is set on a success that deserves attention (a certificate
	// close to expiry).
	Warning string
	// Detail says what was observed on success: an exec command's first line
	// of output, a sync check's value, a DNS answer.
	Detail string
	// Phases are the timed steps, for metrics.
	Phases []Phase
}

// Reason is the result in words.
func (r Result) Reason() string {
	switch {
	case r.Err != nil:
		return r.Err.Error()
	case r.Warning != "" && r.Detail != "":
		return r.Detail + "; warning: " + r.Warning
	case r.Warning != "":
		return "warning: " + r.Warning
	case r.Detail != "":
		return r.Detail
	default:
		return "ok"
	}
}

// ProbeFunc runs one probe against a target. The deadline travels in ctx
// only; a ProbeFunc must return soon after ctx is done.
type ProbeFunc func(ctx context.Context, t Target) Result
