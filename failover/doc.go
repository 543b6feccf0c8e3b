// Package failover is geodnsd's domain core: the pure, deterministic state
// machine that decides which site serves each service, and refuses what is
// unsafe (DESIGN.md §3.2, §3.3). It does no I/O, starts no goroutines and
// never reads the clock: every event carries its time and Decide takes now.
// It imports nothing but the standard library and no project package.
//
// # Model and ownership
//
// A Spec (sites with endpoints and an optional sync check; services with
// routes — ordered site lists per client group — and a Policy; voters and
// cluster parameters) is validated by New, which returns the initial *State.
// An endpoint is {Name, Address} (DESIGN.md §3, seams.md §1): observations,
// votes and status name it, answers carry its address. Apply(s, event) is
// the only way a State changes, and it mutates s in place: a State has one
// owner (the raft FSM). Give readers a Clone, an Answer or a Status; none of
// them shares memory with the State. Respec builds a new State for a
// changed Spec and leaves the old one alone. AnswersVersion counts the
// changes of Answers (it increments once per Apply or Respec that changes
// them; the SOA serial derives from it).
//
// Same events in the same order give the same state, byte for byte in
// MarshalSnapshot. Nothing ranges over a map to produce output; all lists
// are in name order (endpoints and route sites in spec order); times are UTC.
//
// # Time
//
// An event's time becomes the state's time, unless it is before the
// state's time, which then stays (a new leader's clock may lag; the result is
// still deterministic), or more than Spec.MaxClockStep (default one hour)
// after it: then the event is applied at the state's time plus
// MaxClockStep, and Result.ClockClamped carries an error for the caller to
// log. So one event stamped a year ahead costs at most an hour of frozen
// hold-downs (later events are stamped up to the state's time until the
// real clock catches up), not a year; after a long outage the clock
// catches up by MaxClockStep per event. No accepted state has a time past
// year 9999, so every accepted state encodes. A Tick only advances time.
// All thresholds compare elapsed = now - since:
//
//   - a node is fresh while now - last_seen < vote_ttl (expired at exactly
//     vote_ttl);
//   - down_for, stable_for and min_interval are met when elapsed >= the
//     threshold (a threshold of zero is met at once).
//
// Health, sync and conditions are recomputed at every applied event, and
// each records when it last changed ("since"). Decide reads that view and
// compares the hold-downs against its now; since a vote can expire between
// events, Decide proposes nothing at or after State.ViewValidUntil: the
// leader applies a Tick, then decides.
//
// # Votes and health
//
// Each node's last verdict on each (site, endpoint name, check) is kept;
// Endpoint "" holds site-wide checks. An Observation or SyncVerdict sets one
// verdict; a VerdictSet replaces all of a node's verdicts (a full resend: a
// node compares NodeVerdictsDigest with VerdictsDigest of what it thinks and
// resends on a mismatch). A node's verdict on an endpoint is down if any of
// its checks is down, up if it has checks and all are up. Only fresh nodes
// count.
//
// The quorum is a strict majority of the configured voters (4 of 6, 3 of 5,
// 2 of 3), and at least a strict majority of the fresh nodes:
// quorum = max(len(Nodes)/2 + 1, fresh/2 + 1). Spec.MinQuorum, when set,
// replaces the first term: below a majority it lowers the quorum on purpose,
// and Spec.QuorumWarning (and Status.QuorumWarning) says so for the caller
// to log. An endpoint is down when a quorum of fresh nodes votes down, up
// when a quorum votes up, and unknown otherwise. A site is down when every
// endpoint is down or its site-wide checks are down by quorum; up when it is
// not down and an endpoint is up; unknown otherwise.
//
// What it means with six voters: one node that sees everything down while
// the others see it up is a minority and nothing moves; at a cold start the
// first node to report is no quorum, nor are the first three. With 2 of 6
// nodes down (or silent) the 4 left must all agree for anything to become
// down or up, hence to move. With 3 of 6 down nothing moves at all — health
// stays as it was until votes expire, then unknown, and the last state keeps
// answering — as raft itself cannot commit then; in a 3-3 split neither
// half decides. A node that stops beating stops counting at vote_ttl.
//
// Unknown is never down: before any observation, with no fresh node or with
// a split vote, nothing fails over, and the nameserver keeps answering with
// every endpoint that is not down. Unknown is not up either: an unknown site
// is no failover target and gets no fail-back.
//
// # Sync state and the resync rule
//
// A site is in_sync, resyncing or unknown (unknown: no evidence yet, at
// start for a site that serves no route). The rule, applied at every event:
//
//  1. A site that is active on some route is in_sync: it is the source of
//     truth. (A site becomes in_sync when it is made active.)
//  2. A site loses in_sync — becomes resyncing at once, even while still
//     down — when it becomes down while active on no route, or when it
//     stops being active on its last route while down (failed over away
//     from, by decision or command). That is: any site that is down while it
//     is not the active site, or that stops being active because it was down,
//     must resync. A site that is down only briefly while staying active
//     keeps in_sync.
//  3. A site that is active on no route and has a sync check loses in_sync
//     when a quorum of fresh nodes reports its sync check not in sync.
//  4. Losing in_sync forgets the site's sync verdicts: only verdicts given
//     after that moment count. A site that is active on no route regains
//     in_sync only while it is up, when a quorum of fresh nodes reports its
//     sync check in sync; a site with no sync check needs mark-synced
//     (or Spec.TrustHealthWithoutSync, then being up is enough). A verdict
//     re-sent in a VerdictSet is given at the set's time: a node whose sync
//     check still says in sync after a loss resends it (its digest no
//     longer matches) and it counts from then on. A VerdictSet's sync
//     verdicts are given after its observations took effect, so they
//     survive a loss that those observations caused.
//  5. mark-synced sets in_sync (audited). Unforced — accepted only while
//     no quorum of fresh nodes reports the sync check not in sync — it
//     forgets earlier verdicts: only verdicts given after it count, so the
//     nodes that said not in sync, short of a quorum, cannot undo it by
//     themselves, while a quorum saying so later does (rule 3). Forced, it
//     attests the verdict each node holds at that moment: the verdict
//     stays (SyncVoteStatus.Attested, snapshots, the node's verdicts
//     digest) but does not count while the node re-sends the same InSync
//     value, whatever its reason or time, alone or in a VerdictSet. A
//     verdict with the other value counts and ends that node's
//     attestation; so does any verdict from a node that held none at the
//     mark, or whose VerdictSet has since dropped its verdict on the site.
//     Rules 2 and 4 still apply: a marked site that goes down while active
//     on no route must resync, and losing in_sync forgets attestations too.
//
// No configuration change is a way around these rules: see Respec.
//
// Sync state is per site, not per (site, service).
//
// # Conditions
//
// Each route has a condition, recomputed at every event, in this order of
// precedence: all_down (the active site has been down for down_for and no
// other site of the route is up and undrained: it keeps answering, fail
// open); stranded (the active site is drained — perhaps every site of the
// route is — and no other site is up and undrained: it keeps answering and
// cannot move until a site is undrained or comes up);
// awaiting_operator (failover = manual and the active site has been down
// for down_for, or is drained, while another site could take over);
// frozen (automatic decisions are stopped); failed_over (the active site is
// not the first preference); normal.
//
// # Decisions
//
// Decide proposes failover, fail-back and moves away from drained sites per
// the service policy (see Decide); manual mode never moves by itself, not
// even away from a drained site (that route is awaiting_operator). A
// failover or drain prefers a target that has been up and in_sync for
// stable_for, takes one that just came back only when no stable one is left,
// and says which in its reason. A Decision carries the service epoch it
// was computed from; Apply ignores it when the epoch is not the service's,
// while frozen, within min_interval, or when its moves are no longer exactly
// what Decide would propose at the decision's time: a deposed leader cannot
// undo a newer decision, and an applied decision never breaks the rules.
// Each applied decision or moving command increments the service's epoch
// once.
//
// # Commands
//
// Check(s, cmd) runs the same syntax checks and guards as Apply and
// returns a *CommandError wrapping ErrInvalid or ErrRefused. Force (with a
// mandatory reason) skips the guards, never the syntax, and is recorded.
//
//   - promote SITE: SITE becomes active on every route where it is the first
//     preference, or where every site preferred to it is down or drained.
//     Refused unless SITE is up, not drained and in_sync; the error names the
//     blocking check and the value a node reported.
//   - failover SERVICE --to SITE [--route R]: SITE becomes active on R, or on
//     every route of SERVICE that lists it. Refused if SITE is down or
//     drained (unknown health is allowed: the operator decides), and — the
//     same sync guard as promote, so that failover cannot be used to skip
//     it — if SITE is not in_sync while a route's active site is neither down
//     nor drained. Moving away from a down site needs no sync.
//   - drain SITE: SITE is drained and every route it serves moves at once to
//     the site Decide would pick. Refused if a route that lists SITE would
//     have no other up, undrained site, or if a route it serves would move
//     to a site that is not in_sync (a planned move must not lose data).
//     undrain SITE: SITE may serve again (fail-back to it follows the usual
//     rules); it has no guard, since it only adds a candidate.
//   - mode SERVICE auto|manual [--failback auto|manual]: sets the policy
//     modes until the service's spec policy changes.
//   - mark-synced SITE: SITE is in_sync. Refused while SITE is down, and —
//     the same sync refusal as promote, naming the sync check and the value
//     a node reported — while a quorum of fresh nodes reports SITE's sync
//     check not in sync: the operator attests what the check cannot tell
//     (no sync check, or its verdicts unknown or short of a quorum), never
//     against what it does tell. Else mark-synced then promote would be a
//     path around resync. Forced, it holds against the verdicts the nodes
//     keep re-sending (rule 5 of the resync rule).
//   - freeze / thaw: stop / resume automatic decisions cluster-wide;
//     commands still work while frozen.
//
// A command that changes nothing (already drained, already active) is
// accepted and recorded with a note.
//
// # Configuration changes
//
// Respec(s, spec, now) never makes a site active that Decide or an unforced
// command could not make active at that moment: no path around resync
// (DESIGN.md §3.3). A new route or service starts on its first preference
// only when that site is up, undrained and in_sync (or, before any probe,
// when nothing bars it), else where a failover would go; a route whose
// active site is removed from it moves as a decision would, with a history
// entry and an epoch bump; a renamed route (same sites, same order, new
// name) keeps its state. Epochs never go down: a removed service's epoch is
// kept and a service added again under that name continues from it.
//
// # Encoding
//
// EncodeEvent/DecodeEvent: one kind byte plus a JSON payload; a kind with
// the Optional bit that this build does not know decodes to Unknown and is
// ignored, an unknown mandatory kind is an error. MarshalSnapshot and
// UnmarshalSnapshot: JSON with "version": 1, read by every later version;
// decoding is strict (unknown fields, bad values and inconsistencies are
// errors). Beat's Clock, Digest and Verdicts are kept and shown in
// NodeStatus; they never affect a decision.
package failover
