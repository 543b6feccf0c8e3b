// Package api is the wire vocabulary of geodnsd's HTTP surfaces — the public
// status document (GET /status.json), the admin API (/api/v1/...) and its
// errors — and a small Go client for them, shared by the web package (which
// serves them) and failoverctl (which calls them). It imports only the
// standard library.
//
// On the wire, durations are strings as Go's time.Duration prints them
// ("30s", "1m30s") and times are RFC 3339 in UTC (with fractional seconds
// when they are not zero); a time that is not known is null. Never
// nanosecond integers.
package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Schema is the version of the status document (Status.Schema). A field is
// only ever added; a change of meaning takes a new schema number.
const Schema = 1

// Duration is a time.Duration that travels as a string such as "30s".
type Duration time.Duration

// MarshalText writes d as time.Duration.String does ("30s", "1m30s", "0s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what time.ParseDuration accepts; a bare number without
// a unit (other than "0") is an error.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// String is the wire form.
func (d Duration) String() string { return time.Duration(d).String() }

// Time is an instant that travels as an RFC 3339 string in UTC, or null when
// it is not known (the zero time).
type Time struct{ time.Time }

// At returns t as a Time in UTC.
func At(t time.Time) Time {
	if t.IsZero() {
		return Time{}
	}
	return Time{t.UTC()}
}

// MarshalJSON writes null for the zero time, else RFC 3339 (nanoseconds
// only when present) in UTC.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(time.RFC3339Nano) + `"`), nil
}

// UnmarshalJSON reads null or an RFC 3339 string; the result is in UTC.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("time: %w", err)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("time %q: not RFC 3339: %w", s, err)
	}
	*t = Time{v.UTC()}
	return nil
}

// Status is the public status document served at GET /status.json: what
// every service answers and why, the health and sync state of every site with
// the votes behind it, the cluster's nodes and the recent history. It holds
// no secret. Lists are in name order (a route's sites and a site's endpoints
// in configuration order); History is newest first.
type Status struct {
	Schema int    `json:"schema"`
	Node   string `json:"node"`   // the node that rendered this document
	Leader string `json:"leader"` // "" when no leader is known
	Quorum bool   `json:"quorum"` // false: serving the last committed state, mutations refused
	// Halted is why this node stopped applying the log (it serves the state
	// as of AppliedIndex), omitted when it applies normally.
	Halted      string `json:"halted,omitempty"`
	GeneratedAt Time   `json:"generated_at"`
	// StateTime is the time of the last event applied to the state shown.
	StateTime Time `json:"state_time"`
	// AppliedIndex is the replicated log index of the state shown.
	AppliedIndex uint64 `json:"applied_index"`
	// Quorum needed and fresh voters behind site verdicts.
	VoteQuorum int `json:"vote_quorum"`
	FreshNodes int `json:"fresh_nodes"`
	// QuorumWarning is set when min_quorum lowers the vote quorum below a
	// strict majority of the configured voters.
	QuorumWarning string `json:"quorum_warning,omitempty"`
	// AnswersVersion increments whenever an answer changes; the SOA serial
	// of zones with service names derives from it.
	AnswersVersion uint64 `json:"answers_version"`

	Services []Service `json:"services"`
	Sites    []Site    `json:"sites"`
	Nodes    []Node    `json:"nodes"`
	// Frozen: automatic decisions are stopped cluster-wide (failoverctl freeze).
	Frozen bool `json:"frozen"`
	// ConfigMismatch: fresh nodes report different config digests.
	ConfigMismatch bool           `json:"config_mismatch"`
	History        []HistoryEntry `json:"history"`
}

// Service is a set of DNS names that move together, with its policy.
type Service struct {
	Name     string   `json:"name"`
	Names    []string `json:"names"`
	Failover string   `json:"failover"` // "auto" | "manual" (operator-set modes included)
	Failback string   `json:"failback"` // "auto" | "manual"
	// TTL of the service's answers; "0s" when not known to this node.
	TTL         Duration `json:"ttl"`
	DownFor     Duration `json:"down_for"`
	StableFor   Duration `json:"stable_for"`
	MinInterval Duration `json:"min_interval"`
	Epoch       uint64   `json:"epoch"`
	Routes      []Route  `json:"routes"`
}

// Route is one ordered site list of a service (for a group of clients) and
// the site that serves it now.
type Route struct {
	Name string `json:"name"`
	// Sites in preference order; Sites[0] is the preferred site.
	Sites  []string `json:"sites"`
	Active string   `json:"active"`
	// Condition: normal | failed_over | frozen | awaiting_operator |
	// stranded | all_down (see failover.Condition).
	Condition      string `json:"condition"`
	ConditionSince Time   `json:"condition_since"`
	Detail         string `json:"detail,omitempty"`
	Epoch          uint64 `json:"epoch"`
	Since          Time   `json:"since"`  // when Active became active
	Reason         string `json:"reason"` // why Active is active
	// Answer is the addresses (or host names) the nameserver gives.
	Answer []string `json:"answer"`
	// FailOpen: every endpoint is down and all are answered anyway.
	FailOpen bool `json:"fail_open"`
	// Blocked lists, for each site preferred to Active, what keeps it from
	// taking over (empty when the route is on its preferred site).
	Blocked []Blocker `json:"blocked,omitempty"`
}

// Blocker is what keeps a site from becoming active: the check that blocks
// it and the value observed. Check is "admin", "health", "sync" or the name
// of the failing health or sync check.
type Blocker struct {
	Site     string `json:"site"`
	Check    string `json:"check"`
	Observed string `json:"observed"`
}

// Site is a location that can serve, with the cluster's verdicts on it.
type Site struct {
	Name        string `json:"name"`
	Health      string `json:"health"` // up | down | unknown
	HealthSince Time   `json:"health_since"`
	Sync        string `json:"sync"` // in_sync | resyncing | unknown
	SyncSince   Time   `json:"sync_since"`
	SyncCheck   string `json:"sync_check,omitempty"`
	SyncVotes   []Vote `json:"sync_votes"`
	// SyncAttested: the site is in_sync because an operator attested it
	// (mark-synced --force) against what its sync check reads.
	SyncAttested bool   `json:"sync_attested,omitempty"`
	Admin        string `json:"admin"` // active | drained
	// Checks are the site-wide checks' votes (Name "").
	Checks    Endpoint   `json:"checks"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one address or host name of a site and the votes on it.
type Endpoint struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Health  string `json:"health"`
	Since   Time   `json:"since"`
	Votes   Votes  `json:"votes"`
	// Voters are each node's last verdict (fresh or not).
	Voters []Vote `json:"voters"`
}

// Votes counts fresh nodes' verdicts.
type Votes struct {
	Up   int `json:"up"`
	Down int `json:"down"`
}

// Vote is one node's verdict: Up for health, in sync for a sync check.
type Vote struct {
	Node   string `json:"node"`
	Up     bool   `json:"up"`
	Check  string `json:"check,omitempty"`
	Reason string `json:"reason,omitempty"`
	Time   Time   `json:"time"`
	Fresh  bool   `json:"fresh"`
	// Attested: the node held this verdict when a forced mark-synced
	// overrode it; it does not count until the node gives another one.
	Attested bool `json:"attested,omitempty"`
}

// Node is a cluster member as the replicated state sees it.
type Node struct {
	ID     string `json:"id"`
	Fresh  bool   `json:"fresh"` // heard from within vote_ttl
	Leader bool   `json:"leader"`
	Self   bool   `json:"self"` // the node that rendered the document
	// LastSeen is when its last beat or verdict was applied (null: never).
	LastSeen Time `json:"last_seen"`
	// Clock is the node's own wall clock in its last beat (null: unknown).
	Clock Time `json:"clock"`
	// AppliedIndex is the log index it has applied, when known (0: unknown).
	AppliedIndex uint64 `json:"applied_index"`
	// ConfigDigest is "sha256:<hex>" of its configuration and zone data, or
	// "" when it has not reported one.
	ConfigDigest string `json:"config_digest"`
}

// HistoryEntry is one audited decision, command or configuration change.
type HistoryEntry struct {
	Seq     uint64 `json:"seq"`
	Time    Time   `json:"time"`
	Kind    string `json:"kind"` // decision | command | config
	What    string `json:"what"`
	Actor   string `json:"actor,omitempty"`
	Service string `json:"service,omitempty"`
	Route   string `json:"route,omitempty"`
	Site    string `json:"site,omitempty"`
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Note    string `json:"note,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	Forced  bool   `json:"forced,omitempty"`
}

// Ops are the admin commands, each served at POST /api/v1/<op>.
var Ops = []string{"promote", "failover", "drain", "undrain", "mode", "mark-synced", "freeze", "thaw"}

// CommandRequest is the body of POST /api/v1/<op>. Fields an op does not
// take must be empty: promote, drain, undrain, mark-synced take Site;
// failover takes Service, Site (the target) and optionally Route; mode takes
// Service, Mode and optionally Failback; freeze and thaw take nothing. Force
// needs a Reason. The actor is the token's name, never the body's.
type CommandRequest struct {
	Service  string `json:"service,omitempty"`
	Site     string `json:"site,omitempty"`
	Route    string `json:"route,omitempty"`
	Mode     string `json:"mode,omitempty"`
	Failback string `json:"failback,omitempty"`
	Force    bool   `json:"force,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// CommandResult is the reply to an accepted command.
type CommandResult struct {
	Command string `json:"command"` // as an operator would type it
	Actor   string `json:"actor"`
	Index   uint64 `json:"index"` // log index it was committed at
	Epoch   uint64 `json:"epoch"` // the service's epoch after it (0 for site-wide commands)
	// Applied is "leader" (committed, applied by the leader) or "all" (every
	// reachable node has applied it: ?wait=all).
	Applied string `json:"applied"`
	// Entries are the history entries the command added (notes included).
	Entries []HistoryEntry `json:"entries"`
}

// HistoryPage is the reply of GET /api/v1/history?limit=N&before=SEQ:
// entries with seq < before (all when before is 0), newest first, at most
// limit of them. Next is the before value for the following page, 0 when
// there is none.
type HistoryPage struct {
	Entries []HistoryEntry `json:"entries"`
	Next    uint64         `json:"next"`
}

// NodesReply is the reply of GET /api/v1/nodes.
type NodesReply struct {
	Leader         string `json:"leader"`
	Quorum         bool   `json:"quorum"`
	ConfigMismatch bool   `json:"config_mismatch"`
	Nodes          []Node `json:"nodes"`
}

// Error reasons (ErrorBody.Error), one per HTTP status the API returns.
const (
	ReasonUnauthorized = "unauthorized"   // 401: no token, or a token not in the configuration
	ReasonForbidden    = "forbidden"      // 403: the token's role may not do this
	ReasonNotFound     = "not_found"      // 404
	ReasonRefused      = "refused"        // 409: a guard refused the command (force overrides)
	ReasonInvalid      = "invalid"        // 422 (and 400): malformed, unknown names
	ReasonRateLimited  = "rate_limited"   // 429
	ReasonUnavailable  = "no_quorum"      // 503: no leader reachable, or it timed out
	ReasonInternal     = "internal"       // 500
	ReasonTooLarge     = "too_large"      // 413
	ReasonBadMethod    = "bad_method"     // 405
	ReasonTimeout      = "timeout"        // 503 (?wait=all not reached in time)
	ReasonUnsupported  = "bad_media_type" // 415
)

// ErrorBody is every error reply of the API: {"error": reason word,
// "message": one line for a person, ...}. Check and Observed are set on a
// 409: the check that blocks the command and the value observed.
type ErrorBody struct {
	Error    string `json:"error"`
	Message  string `json:"message"`
	Command  string `json:"command,omitempty"`
	Check    string `json:"check,omitempty"`
	Observed string `json:"observed,omitempty"`
}
