package failover

import (
	"fmt"
	"time"
)

// Decide returns what the leader should propose at now: at most one
// Decision per service, in service name order, each carrying the epoch it
// was computed from. It reads s (as of its last applied event) and never
// changes it. It returns nothing while frozen, and nothing when now is at or
// after s.ViewValidUntil() (a vote may have expired since the last applied
// event: apply a Tick at now first). now counts as the time Apply would
// apply the decisions at: not before s.Now(), and at most
// Spec.MaxClockStep after it.
//
// The decisions are meant to be applied in the order returned, all of them
// (the leader appends them as one log entry): each service's decision is the
// one Decide makes on s with the decisions before it applied, because a move
// changes what another service sees (a site that becomes active is in_sync
// at once, and so may become another route's target or, with stable_for 0,
// its fail-back; a site left down and active nowhere loses its sync). So
// each is accepted by Apply after the ones before it. Applied alone, or out
// of order, a later decision may be ignored as no longer valid. Decide works
// on a clone of s only when a second decision may follow a first: nothing
// is copied when one or no decision is proposed.
//
// Per service, nothing is proposed until min_interval has passed since the
// service's last change. Per route, in this order:
//
//   - fail-back (failback = auto): to the first site preferred to the active
//     one that is up, not drained, in_sync, and has been both up and in_sync
//     for at least stable_for;
//   - drain (failover = auto): away from a drained active site;
//   - failover (failover = auto): away from an active site that has been
//     down for at least down_for.
//
// A drain or failover goes to a site that is up, not drained and in_sync:
// the first in route order that has been both up and in_sync for
// stable_for, or, when none has, the first that is up, undrained and in_sync
// (a site that just came back is a target only when no stable one is left).
// Failing that it goes to the first site that is up and not drained, in
// sync or not (serving from a resyncing site beats serving from a down
// one). With no such site nothing moves (the route is all_down, or stranded
// when its active site is drained: fail open). The move's reason says which
// case chose the target.
func Decide(s *State, now time.Time) []Decision {
	now, _ = s.stepTime(now)
	if s.frozen || (!s.validUntil.IsZero() && !now.Before(s.validUntil)) {
		return nil
	}
	var out []Decision
	w := s // the state decided on: s, or a clone with out applied
	for si := range s.services {
		moves := w.moves(si, now)
		if len(out) == 1 && w == s && (moves != nil || s.unlockable(si, now)) {
			// out[0] may change this service's decision: decide it on a
			// clone with out[0] applied, as the log will apply it.
			w = s.Clone()
			if !w.accepts(out[0]) {
				return out // not reached: out[0] is what Apply checks
			}
			moves = w.moves(si, now)
		}
		if moves == nil {
			continue
		}
		d := Decision{Time: now, Service: s.spec.Services[si].Name, Epoch: w.services[si].epoch, Moves: moves}
		if w != s && !w.accepts(d) {
			return out // not reached: d is what Apply checks on w
		}
		out = append(out, d)
	}
	return out
}

// moves are the moves service si proposes on s at now: nil within
// min_interval of its last change, or when no route moves.
func (s *State) moves(si int, now time.Time) []Move {
	sv := &s.services[si]
	if !sv.lastMove.IsZero() && now.Sub(sv.lastMove) < sv.policy.MinInterval {
		return nil
	}
	var moves []Move
	for ri := range sv.routes {
		if m, ok := s.propose(si, ri, now); ok {
			moves = append(moves, m)
		}
	}
	return moves
}

// unlockable reports whether service si, which proposes nothing on s at
// now, might propose something once another service's decision is applied.
// A move only makes its target in_sync (since now) and may make the site it
// leaves lose its sync; health, drains and down_for do not change. So a
// drain or failover exists after it exactly when it exists before (its
// target may differ), and the only move that can appear is a fail-back to
// the new in_sync site, stable at once only with stable_for 0.
func (s *State) unlockable(si int, now time.Time) bool {
	sv := &s.services[si]
	if !sv.lastMove.IsZero() && now.Sub(sv.lastMove) < sv.policy.MinInterval {
		return false
	}
	return sv.policy.Failback == Auto && sv.policy.StableFor == 0
}

// accepts applies d to s, a working clone, and reports whether Apply took
// it.
func (s *State) accepts(d Decision) bool {
	res, err := Apply(s, d)
	return err == nil && res.Ignored == ""
}

// propose is the move Decide would make on one route at now, if any.
func (s *State) propose(si, ri int, now time.Time) (Move, bool) {
	sv := &s.services[si]
	r := &sv.routes[ri]
	pol := &sv.policy
	a := &s.sites[r.active]
	move := func(to int, kind MoveKind, reason string) (Move, bool) {
		return Move{Route: s.spec.Services[si].Routes[ri].Name, From: s.spec.Sites[r.active].Name,
			To: s.spec.Sites[to].Name, Kind: kind, Reason: reason}, true
	}
	if pol.Failback == Auto {
		for _, p := range r.sites {
			if p == r.active {
				break
			}
			st := &s.sites[p]
			if st.health != Up || st.admin == Drained || st.sync != InSync {
				continue
			}
			if d := now.Sub(st.stableSince()); d >= pol.StableFor {
				return move(p, MoveFailback, fmt.Sprintf("%s up and in_sync for %s (stable_for %s)",
					s.spec.Sites[p].Name, d, pol.StableFor))
			}
		}
	}
	if pol.Failover != Auto {
		return Move{}, false
	}
	if a.admin == Drained {
		if t, why := s.target(r, r.active, pol.StableFor, now); t >= 0 {
			return move(t, MoveDrain, s.spec.Sites[r.active].Name+" is drained; "+why)
		}
		return Move{}, false
	}
	if a.health == Down {
		if d := now.Sub(a.healthSince); d >= pol.DownFor {
			if t, why := s.target(r, r.active, pol.StableFor, now); t >= 0 {
				return move(t, MoveFailover, fmt.Sprintf("%s down for %s (down_for %s); %s",
					s.spec.Sites[r.active].Name, d, pol.DownFor, why))
			}
		}
	}
	return Move{}, false
}
