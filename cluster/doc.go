// Package cluster replicates the failover state among geodnsd's nodes with
// hashicorp/raft (DESIGN.md §3.3): one log, one deterministic FSM around
// failover.State on every node, a leader that stamps times and decides.
// It is the only package that imports raft.
//
// # Storage and identity
//
// Under Options.StateDir: raft.db (raft-boltdb: log and stable store),
// snapshots/ (raft's FileSnapshotStore, two kept) and identity.json (node
// id, cluster id, member ids). The cluster bootstraps from Options.Members
// on first start only — every listed member with the same list; a member
// added later starts with Join and is added by the leader. A restart
// recovers from disk. A state directory made for another node id, for
// another configured cluster id, or (without one) for a cluster of which
// fewer than a majority of the recorded members are configured now, is
// refused; so is raft data without identity.json.
//
// # Transport
//
// One TCP port carries raft and the forwarding of writes, both inside TLS
// 1.3 with mutual authentication: a peer must present a certificate from
// the cluster CA whose DNS SAN names a current member; the dialer checks
// that the server's certificate names the member it meant to reach. After
// the handshake the dialer writes one byte: 'R' for raft's
// NetworkTransport, 'F' for HTTP/1.1 write forwarding. A one-member cluster
// without TLS uses raft's in-memory transport and opens no socket; the
// FSM, leader loop and write path are the same. pki.go makes the CA and
// node certificates (ECDSA P-256).
//
// # Log entries and the FSM
//
// A LogCommand entry is a type byte and a payload: 1 = a batch of
// failover events (each uvarint length + failover.EncodeEvent bytes), 2 =
// a spec (JSON, failover.New for the bootstrap spec that the first leader
// appends, failover.Respec later). Times come from the entries, stamped by
// the leader; Apply never reads the clock. An event the core rejects
// (errors wrapping failover.ErrInvalid or ErrRefused) is a normal,
// deterministic outcome: counted, and the FSM goes on. Anything else — an
// undecodable entry, an unknown mandatory event kind or entry type, any
// other Apply error — halts the FSM: it keeps its state and index as of
// the last good entry, refuses every later entry (it never skips one) and
// every snapshot (so raft cannot compact past the entry), and reports it
// at Error, in geodnsd_cluster_halted and View.Halted; writes then fail
// with ErrHalted. A build that understands the entry replays it.
//
// Snapshots are "GDNSCS1\n", the applied index (8 bytes big-endian) and
// failover.MarshalSnapshot's bytes. After each applied entry (one per raft
// batch) the node publishes an immutable View with one atomic swap and
// closes the channel Changed returned.
//
// # Leader
//
// The leader, every TickInterval and right after observations arrive,
// applies a Tick stamped with its clock and appends what failover.Decide
// proposes. It restamps every forwarded write. Each node beats every
// BeatInterval with its clock, config digest and verdicts digest, and
// resends its full verdict set (failover.VerdictSet) when the state's
// record of its verdicts differs, at most once per beat. The clock guard:
// the leader compares its clock with the median of the fresh nodes'
// (itself included; each beat's clock corrected by half the sender's
// forwarding round trip); when those nodes are a majority of the voters
// and the median is off by more than MaxClockSkew, it stops stamping,
// transfers leadership and logs why at Error.
//
// # Quorum
//
// HasQuorum is true on the leader (raft steps it down after
// LeaderLeaseTimeout without a quorum's contact) and on a follower that
// heard from a known leader within ContactTimeout. Without it a node keeps
// serving its last committed state; its writes wait for a leader at most
// WriteTimeout and then fail with ErrNoQuorum. Six voters tolerate two
// failures, as five do; a 3–3 split leaves both halves without quorum.
package cluster
