// Package zones owns the zone data of the nameserver: it loads RFC 1035
// zone files with named-checkzone grade checks, binds service names to them
// (answered from the replicated routing view), freezes both into immutable
// snapshots, answers questions against a snapshot (question in, sections
// out, no I/O), and keeps the current snapshot fresh.
//
// The socket side (message envelope, EDNS, truncation, packing, caching of
// packed replies) lives in package dnsserver; it calls [Snapshot.Lookup] on a
// cache miss and builds the reply from the returned [Result].
//
// # Loading
//
// [Parse] reads one zone. $INCLUDE and $GENERATE are refused (NSD supports
// neither), $ORIGIN and $TTL work as in RFC 1035/2308: a record without a TTL
// takes the last $TTL, else the TTL of the previous record (the ZoneParser's
// rule, as BIND); the first record of a file without $TTL must carry a TTL.
// Every record is packed to wire form and read back at load, so that what
// loads is exactly what can be sent and names meet in one canonical form
// whether they come from a file ("has\046dot", "t\097rget") or from the
// wire: owners in lower case, names inside RDATA in the file's case (see
// name.go). A record that does not pack, a CAA tag that RFC 8659 forbids, a
// TXT string over 255 bytes and generic RDATA (RFC 3597 "\#") that is not
// exactly the wire form of its known type are refused, as NSD refuses them.
// Identical records are merged silently. An RRset
// whose records carry different TTLs is normalised to the TTL of its first
// record (as BIND does) and a warning is kept in [Zone.Warnings]. Every other
// problem is a load error of the form "file:line: message"; several are
// reported at once (joined with errors.Join), up to a cap.
//
// # Answering
//
// [Snapshot.Lookup] answers as NSD and Knot do (RFC 1034, 2181, 2308, 4592,
// 6604, 6672, 8482), with minimal responses: positive answers carry no authority
// section. See [Snapshot.Lookup] for the rules and the judgement calls.
//
// The RRs in a [Result] are shared with the snapshot and must never be
// modified; RRs whose owner is rewritten (the qname as asked, wildcard
// synthesis) are copies.
//
// # Services
//
// [NewServices] compiles the services the node builds from config (names,
// TTL, a geo router); [Store.SetServices] installs them and
// [Store.SetRouting] swaps in each new [Routing] view, each as one atomic
// snapshot swap. The server finds the services a name depends on with
// [Snapshot.Dynamic], the client's route of each with [Snapshot.Locate] and
// [Snapshot.Route], and asks [Snapshot.Answer] with those routes in the
// [Question]; see [Snapshot.Answer] for the answering rules and [Routing]
// for the SOA serial. [CheckServices] reports names that conflict with
// the zone data, for the configuration check.
//
// # Store
//
// [Store] loads every "*.zone" file of one directory of an fs.FS (dot files,
// editor backups and other names are ignored), keeps the last good zone of a
// file whose new version is bad, and swaps a new [Snapshot] atomically.
package zones
