package dnsserver

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/geo"
	"github.com/geodnsd/geodnsd/zones"
)

// handler is the configuration shared, read-only, by every worker.
type handler struct {
	src      Source
	udpSize  int
	nsid     []byte
	identity string // TXT presentation form, "" = REFUSED
	version  string
	zones    *zoneNames
	xfrAllow []netip.Prefix     // addresses allowed to transfer zones
	keys     map[string]TSIGKey // TSIG keys by lower-case FQDN name
	rrl      *rrl               // nil: no response rate limiting

	log       *slog.Logger
	replyErrs atomic.Uint64 // replies that failed to build
	logged    atomic.Bool   // the first failure has been logged
	failPack  error         // tests: every pack fails with this error
}

// worker answers packets for one goroutine: it owns its scratch request,
// key and pack buffers, its reply cache (nil: no caching) and its counters.
type worker struct {
	h       *handler
	proto   proto
	cache   *cache
	ctr     *counters
	req     request
	key     [maxKeyLen]byte
	pack    []byte   // dns.Msg.PackBuffer scratch, miss path only
	ede     int      // Extended DNS Error info code for the OPT of this reply, -1 none
	xfr     [][]byte // a zone transfer's messages after the first (TCP), written by the caller
	tsigKey string   // the key that signed the current query ("" none), while it is answered
	tsigLen int      // the most bytes its TSIG adds to the reply (tsigRoom), while it is answered
	// udpRoom is the most a UDP reply to the largest EDNS size carries:
	// udp_size, less where the socket's interface sends less whole
	// (payloadCap, set by Start), never under 512.
	udpRoom int

	// The current query's service routes (see route): deps are the
	// services the answer depends on, routes[i] the client's route of
	// service i (only deps entries are meaningful), scope the ECS scope.
	deps   []int
	routes []uint8
	scope  int

	// locs memoises client locations per /24 (IPv4) or /56 (IPv6) for the
	// snapshot locsVersion (nil: no memo, as for TCP workers); see locate.
	locs        map[netip.Addr]geo.Location
	locsVersion uint64
}

// Location memo bounds: the block a location is memoised for, and the
// entries kept before the memo starts again empty.
const (
	memoBits4 = 24
	memoBits6 = 56
	maxMemo   = 1 << 16
)

func (h *handler) newWorker(p proto, c *cache, ctr *counters) *worker {
	w := &worker{h: h, proto: p, cache: c, ctr: ctr, ede: -1, udpRoom: h.udpSize}
	if c != nil {
		w.locs = make(map[netip.Addr]geo.Location)
	}
	return w
}

// locate returns the client's location, from the memo when an address of
// the same /24 (/56) was located with this snapshot. A location is
// memoised only when every database network it comes from contains the
// whole block: then every address of the block has the same location
// (Addr apart), so the memo answers exactly what the databases would.
func (w *worker) locate(snap *zones.Snapshot, client netip.Addr) geo.Location {
	client = client.Unmap()
	if w.locs == nil || !client.IsValid() {
		return snap.Locate(client)
	}
	if v := snap.Version(); v != w.locsVersion {
		clear(w.locs)
		w.locsVersion = v
	}
	bits := memoBits4
	if client.Is6() {
		bits = memoBits6
	}
	block, _ := client.Prefix(bits)
	key := block.Addr()
	if loc, ok := w.locs[key]; ok {
		loc.Addr = client
		return loc
	}
	loc := snap.Locate(client)
	if loc.Prefix.Bits() <= bits && loc.ASNPrefix.Bits() <= bits {
		if len(w.locs) >= maxMemo {
			clear(w.locs)
		}
		w.locs[key] = loc
	}
	return loc
}

// respond appends the reply to the request msg to dst and returns it. It
// returns dst unchanged when the request gets no reply. It never panics:
// a panic is counted and answered SERVFAIL.
func (w *worker) respond(dst, msg []byte) []byte {
	return w.respondFrom(dst, msg, netip.Addr{})
}

// respondFrom is respond for a query from the address from (the resolver
// or client: where a service answer without a usable ECS option is
// routed for; the zero Addr routes to each service's default).
func (w *worker) respondFrom(dst, msg []byte, from netip.Addr) (out []byte) {
	start := len(dst)
	defer func() {
		if v := recover(); v != nil {
			w.ctr.panics.Add(1)
			out = servfail(dst[:start], msg)
		}
	}()
	q := &w.req
	w.ede = -1
	switch q.parse(msg) {
	case vDrop:
		w.ctr.malformed.Add(1)
		return dst
	case vFormErr:
		w.ctr.malformed.Add(1)
		return w.errorReply(dst, msg, dns.RcodeFormatError)
	case vNotImp:
		// Only QR and the opcode: a header whose other flags mean nothing
		// for an opcode we do not know (ISC genreport "opcodeflg").
		q.flags &= opcodeMask << opcodeShift
		return w.errorReply(dst, msg, dns.RcodeNotImplemented)
	case vSigned:
		return w.signed(dst, msg, from)
	case vBadVers:
		return w.errorReply(dst, msg, dns.RcodeBadVers)
	}
	return w.dispatch(dst, msg, from)
}

// dispatch answers a well-formed query by its type: transfers, or an answer.
func (w *worker) dispatch(dst, msg []byte, from netip.Addr) []byte {
	q := &w.req
	switch q.qtype {
	case typeAXFR:
		// NSD: AXFR over UDP is NOTIMP; over TCP it is refused unless
		// the client's address is allowed (Options.TransferAllow).
		if w.proto == protoUDP {
			return w.errorReply(dst, msg, dns.RcodeNotImplemented)
		}
		if w.h.transferAllowed(from) && w.keyOK() {
			return w.transfer(dst, msg)
		}
		w.ede = edeProhibited
		return w.errorReply(dst, msg, dns.RcodeRefused)
	case typeIXFR:
		if w.proto == protoTCP && w.h.transferAllowed(from) && w.keyOK() {
			return w.transfer(dst, msg) // RFC 1995 §4: a full transfer answers IXFR
		}
		w.ede = edeProhibited
		return w.errorReply(dst, msg, dns.RcodeRefused)
	}
	return w.answer(dst, msg, from)
}

// replyFlags: QR, the query's opcode, RD and CD, and the low rcode bits.
func (q *request) replyFlags(rcode int) uint16 {
	return flagQR | q.flags&(opcodeMask<<opcodeShift|flagRD|flagCD) | uint16(rcode&0xf)
}

// errorReply builds a reply with no records: the question when exactly one
// parsed (except for FORMERR: the message is not trusted, NSD echoes
// nothing), and an OPT when the query's OPT parsed.
func (w *worker) errorReply(dst, msg []byte, rcode int) []byte {
	q := &w.req
	var qd, ar byte
	echoQ := q.hasQ && rcode != dns.RcodeFormatError
	if echoQ {
		qd = 1
	}
	if q.edns {
		ar = 1
	}
	f := q.replyFlags(rcode)
	dst = append(dst, byte(q.id>>8), byte(q.id), byte(f>>8), byte(f), 0, qd, 0, 0, 0, 0, 0, ar)
	if echoQ {
		dst = append(dst, msg[headerLen:q.qEnd]...)
	}
	if q.edns {
		dst = w.appendOPT(dst, uint8(rcode>>4), rcode != dns.RcodeBadVers)
	}
	w.ctr.query(zoneNone, q.qtype, rcodeIndex(rcode))
	return dst
}

// tsigError answers a signed query whose key we do not know (BADKEY) or
// whose MAC or time does not verify (BADSIG, BADTIME): NOTAUTH, unsigned,
// with a TSIG RR that copies the query's key name, algorithm, time and
// original ID, carries no MAC and the error (RFC 8945 §5.2). The TSIG comes
// after the OPT, as the last record.
func (w *worker) tsigError(dst, msg []byte, t *dns.TSIG, tsigErr uint16) []byte {
	q := &w.req
	start := len(dst)
	q.hasQ = false // as NSD: no question in a BADKEY reply
	dst = w.errorReply(dst, msg, dns.RcodeNotAuth)
	out := &dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: t.TimeSigned,
		Fudge:      t.Fudge,
		OrigId:     t.OrigId,
		Error:      tsigErr,
	}
	buf := make([]byte, 512)
	n, err := dns.PackRR(out, buf, 0, nil, false)
	if err != nil {
		return dst
	}
	dst = append(dst, buf[:n]...)
	ar := binary.BigEndian.Uint16(dst[start+10:])
	binary.BigEndian.PutUint16(dst[start+10:], ar+1)
	return dst
}

// servfail is the reply after a recovered panic: header only.
func servfail(dst, msg []byte) []byte {
	if len(msg) < headerLen {
		return dst
	}
	f := flagQR | binary.BigEndian.Uint16(msg[2:])&(opcodeMask<<opcodeShift|flagRD|flagCD) | dns.RcodeServerFailure
	return append(dst, msg[0], msg[1], byte(f>>8), byte(f), 0, 0, 0, 0, 0, 0, 0, 0)
}

// Extended DNS Error info codes (RFC 8914 §4) that geodnsd sends, where
// NSD 4.6 sends them: always with empty EXTRA-TEXT.
const (
	edeProhibited       = 18 // a refused transfer; CHAOS data we hide
	edeNotAuthoritative = 20 // REFUSED: the name is in none of our zones
	edeNotSupported     = 21 // CHAOS questions we have no answer for
)

// optOffset is the offset of the RDLENGTH of the OPT RR that packOPT put
// last in reply b, 0 when the query had no OPT.
func (w *worker) optOffset(b []byte) uint16 {
	if !w.req.edns {
		return 0
	}
	return uint16(len(b) - w.optLen(true) + 9)
}

// optLen is the size of the OPT RR appendOPT writes.
func (w *worker) optLen(nsidOK bool) int {
	n := 11
	if nsidOK && w.req.nsid && len(w.h.nsid) > 0 {
		n += 4 + len(w.h.nsid)
	}
	if w.ede >= 0 {
		n += 6
	}
	return n
}

// appendOPT appends our OPT RR: our UDP size, the extended rcode, version
// 0, DO echoed, and NSID when asked for (and nsidOK) and configured.
func (w *worker) appendOPT(dst []byte, ext uint8, nsidOK bool) []byte {
	q := &w.req
	var do byte
	if q.do {
		do = 0x80
	}
	size := w.h.udpSize
	dst = append(dst, 0, 0, typeOPT, byte(size>>8), byte(size), ext, 0, do, 0)
	rdlen := 0
	nsid := nsidOK && q.nsid && len(w.h.nsid) > 0
	if nsid {
		rdlen += 4 + len(w.h.nsid)
	}
	if w.ede >= 0 {
		rdlen += 6
	}
	dst = append(dst, byte(rdlen>>8), byte(rdlen))
	if nsid {
		n := len(w.h.nsid)
		dst = append(dst, 0, optNSID, byte(n>>8), byte(n))
		dst = append(dst, w.h.nsid...)
	}
	if w.ede >= 0 {
		dst = append(dst, 0, optEDE, 0, 2, byte(w.ede>>8), byte(w.ede))
	}
	return dst
}

// makeKey writes the cache key for the current request and a size limit
// (0: the full reply) into w.key.
func (w *worker) makeKey(limit int) []byte {
	q := &w.req
	n := copy(w.key[:], q.qname[:q.qlen])
	var fl byte
	if q.edns {
		fl |= keyFlagEDNS
		if q.do {
			fl |= keyFlagDO
		}
		if q.nsid && len(w.h.nsid) > 0 {
			fl |= keyFlagNSID
		}
	}
	k := w.key[:n+keyTail+len(w.deps)]
	binary.BigEndian.PutUint16(k[n:], q.qtype)
	binary.BigEndian.PutUint16(k[n+2:], q.qclass)
	k[n+4] = fl
	binary.BigEndian.PutUint16(k[n+5:], uint16(limit))
	for j, i := range w.deps {
		k[n+keyTail+j] = w.routes[i]
	}
	return k
}

// echoECS reports whether the reply carries an ECS option: when the query
// has one and the answer depends on a service's route. A static answer is
// the same for every client and goes without the option, as NSD, which
// does not implement ECS, answers (a resolver takes a reply without it as
// scope 0, RFC 7871 §7.3).
func (w *worker) echoECS() bool { return w.req.ecsOff != 0 && len(w.deps) > 0 }

// route finds the services the answer depends on and the client's route
// for each (w.deps, w.routes) and the ECS scope of that decision
// (w.scope). The client is the ECS subnet when the query carries a usable
// one, else from. It reports false when the answer cannot be cached (more
// services than the key has room for).
func (w *worker) route(snap *zones.Snapshot, from netip.Addr) bool {
	q := &w.req
	w.deps, w.scope = nil, 0
	if snap == nil || q.qclass == classCHAOS {
		return true
	}
	deps := snap.Dynamic(q.qname[:q.qlen])
	if len(deps) == 0 {
		return true
	}
	w.deps = deps
	if n := deps[len(deps)-1] + 1; len(w.routes) < n {
		w.routes = make([]uint8, n)
	}
	client := from
	if q.ecsUse {
		client = q.ecsAddr
	}
	var loc geo.Location
	located := false
	for _, i := range deps {
		if snap.Static(i) {
			w.routes[i] = 0
			continue
		}
		r, scope, ok := snap.RouteAddr(i, client)
		if !ok {
			if !located {
				loc, located = w.locate(snap, client), true
			}
			r, scope = snap.Route(i, &loc)
		}
		w.routes[i] = uint8(min(r, 255))
		w.scope = max(w.scope, scope)
	}
	if !q.ecsUse {
		w.scope = 0 // the answer is not for the ECS subnet: scope 0 (RFC 7871 §7.2.1)
	} else {
		w.scope = min(w.scope, int(q.ecsSource))
	}
	return len(deps) <= maxDeps
}

// answer answers a well-formed query from the cache or from the snapshot.
func (w *worker) answer(dst, msg []byte, from netip.Addr) []byte {
	q := &w.req
	var snap *zones.Snapshot
	if w.h.src != nil {
		snap = w.h.src.Snapshot()
	}
	limit := 65535
	if w.proto == protoUDP {
		// Within the client's size and what the interface sends whole (so
		// that a client offering more than the link carries still gets what
		// fits, signed); a signed reply with room for its TSIG, which signed
		// adds last.
		limit = q.udpLimit(w.udpRoom) - w.tsigLen
	}
	c := w.cache
	if !w.route(snap, from) {
		c = nil
	}
	if w.echoECS() {
		limit -= 4 + q.ecsLen // room for the ECS option emit appends
	}
	if c != nil {
		var version uint64
		if snap != nil {
			version = snap.Version()
		}
		c.check(version)
		key := w.makeKey(0)
		if e, ok := c.get(key); ok {
			if len(e.reply) <= limit {
				return w.emit(dst, msg, e)
			}
			if e, ok := c.get(w.makeKey(limit)); ok {
				return w.emit(dst, msg, e)
			}
		}
	}
	full, fit, err := w.build(snap, limit)
	if err != nil {
		w.h.buildFailed(q, err)
		return w.errorReply(dst, msg, dns.RcodeServerFailure)
	}
	if c != nil {
		c.put(w.makeKey(0), full)
		if len(full.reply) > limit {
			c.put(w.makeKey(limit), fit)
		}
	}
	return w.emit(dst, msg, fit)
}

// emit appends a prepared reply with the query's ID, RD, CD and qname case.
func (w *worker) emit(dst, msg []byte, e entry) []byte {
	q := &w.req
	start := len(dst)
	dst = append(dst, e.reply...)
	r := dst[start:]
	r[0], r[1] = byte(q.id>>8), byte(q.id)
	r[2] |= byte(q.flags>>8) & (flagRD >> 8)
	r[3] |= byte(q.flags) & flagCD
	copy(r[headerLen:headerLen+q.qlen], msg[headerLen:headerLen+q.qlen])
	if w.echoECS() && e.opt != 0 {
		// Echo the ECS option with our scope (RFC 7871 §7.2.1): FAMILY,
		// SOURCE PREFIX-LENGTH and ADDRESS as asked, after the OPT's
		// other options; the OPT is the last record.
		n := 4 + q.ecsLen
		rdlen := int(binary.BigEndian.Uint16(r[e.opt:]))
		binary.BigEndian.PutUint16(r[e.opt:], uint16(rdlen+n))
		dst = append(dst, 0, optECS, byte(q.ecsLen>>8), byte(q.ecsLen))
		dst = append(dst, msg[q.ecsOff:q.ecsOff+q.ecsLen]...)
		dst[len(dst)-q.ecsLen+3] = byte(w.scope)
	}
	w.ctr.query(e.zone, q.qtype, e.rcode)
	if e.tc {
		w.ctr.truncated.Add(1)
	}
	return dst
}

// build asks the snapshot (or the CHAOS table) and packs the full reply and
// the reply fitted to limit; both are fresh copies the cache may keep.
func (w *worker) build(snap *zones.Snapshot, limit int) (full, fit entry, err error) {
	q := &w.req
	name, _, err := dns.UnpackDomainName(q.qname[:q.qlen], 0)
	if err != nil {
		return entry{}, entry{}, err
	}
	var res zones.Result
	switch {
	case q.qclass == classCHAOS:
		res, w.ede = w.h.chaos(name, q.qtype)
	case snap == nil:
		res = zones.Result{Rcode: dns.RcodeRefused}
	default:
		// Only the dependencies' routes are this query's; the others
		// (left from earlier queries) are defaulted.
		var routes []uint8
		if len(w.deps) > 0 {
			routes = make([]uint8, len(w.routes))
			for _, i := range w.deps {
				routes[i] = w.routes[i]
			}
		}
		res = snap.Answer(zones.Question{Name: name, Type: q.qtype, Class: q.qclass, DO: q.edns && q.do, Routes: routes})
	}
	if res.Rcode == dns.RcodeRefused && res.Zone == "" && (q.qclass == classINET || q.qclass == classANY) {
		w.ede = edeNotAuthoritative // as NSD: REFUSED outside our zones
	}
	m := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Response:      true,
			Authoritative: res.Authoritative,
			Rcode:         res.Rcode & 0xf,
		},
		Compress: true,
		Question: []dns.Question{{Name: name, Qtype: q.qtype, Qclass: q.qclass}},
		Answer:   res.Answer,
		Ns:       res.Ns,
		Extra:    res.Extra,
	}
	ext := uint8(res.Rcode >> 4)
	zone := w.h.zones.intern(res.Zone)
	rc := rcodeIndex(res.Rcode)

	b, err := w.packOPT(m, ext)
	if err != nil {
		return entry{}, entry{}, err
	}
	full = entry{reply: clone(b), zone: zone, rcode: rc, opt: w.optOffset(b)}
	if len(b) <= limit {
		return full, full, nil
	}
	b, tc, err := w.fit(m, res, ext, limit)
	if err != nil {
		return entry{}, entry{}, err
	}
	return full, entry{reply: clone(b), zone: zone, rcode: rc, tc: tc, opt: w.optOffset(b)}, nil
}

// buildFailed counts a reply that could not be built and logs the first
// one. Zones refuse at load every record that does not pack, so this is a
// bug, never expected input: it is answered SERVFAIL, counted in
// geodnsd_dns_reply_errors_total and logged once per server (not per
// query: the query path logs nothing above Debug otherwise).
func (h *handler) buildFailed(q *request, err error) {
	h.replyErrs.Add(1)
	if h.logged.Swap(true) {
		return
	}
	name, _, _ := dns.UnpackDomainName(q.qname[:q.qlen], 0)
	h.log.Error("dns reply could not be built; answered SERVFAIL (logged once, counted in geodnsd_dns_reply_errors_total)",
		"qname", name, "qtype", dns.Type(q.qtype).String(), "error", err)
}

func clone(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// packOPT packs m with compression into the scratch buffer and appends the
// OPT RR when the query had one.
func (w *worker) packOPT(m *dns.Msg, ext uint8) ([]byte, error) {
	if w.h.failPack != nil {
		return nil, w.h.failPack
	}
	if cap(w.pack) < 1024 {
		w.pack = make([]byte, 4096)
	}
	b, err := m.PackBuffer(w.pack[:cap(w.pack)])
	if err != nil {
		return nil, err
	}
	if cap(b) > cap(w.pack) {
		w.pack = b[:cap(b)]
	}
	if w.req.edns {
		b = w.appendOPT(b, ext, true)
		binary.BigEndian.PutUint16(b[10:], binary.BigEndian.Uint16(b[10:])+1)
	}
	return b, nil
}

// fit makes the reply fit in limit bytes, as NSD and Knot do: additional
// RRsets that do not fit are left out without TC (RFC 2181 §9), except the
// glue of in-domain name servers in a referral, which sets TC (RFC 9471);
// when the answer and authority sections do not fit, the reply keeps the
// whole RRsets of those sections that fit, in order up to the first that
// does not, and sets TC (RFC 2181 §9: a CNAME whose target's RRset is too
// big comes with TC, as NSD and Knot send it).
func (w *worker) fit(m *dns.Msg, res zones.Result, ext uint8, limit int) ([]byte, bool, error) {
	opt := 0
	if w.req.edns {
		opt = w.optLen(true)
	}
	extra := m.Extra
	m.Extra = nil
	if m.Len()+opt > limit {
		return w.truncated(m, ext, limit-opt)
	}
	required := requiredGlue(res)
	kept := make([]dns.RR, 0, len(extra))
	for i := 0; i < len(extra); {
		j := nextRRset(extra, i)
		m.Extra = append(kept, extra[i:j]...)
		switch {
		case m.Len()+opt <= limit:
			kept = m.Extra
		case required(extra[i]):
			// RFC 9471 §3: TC when the referral's glue does not all fit;
			// the NS RRset that fits stays, as Knot keeps it
			m.Extra = nil
			return w.truncated(m, ext, limit-opt)
		}
		i = j
	}
	m.Extra = kept
	b, err := w.packOPT(m, ext)
	if err != nil {
		return nil, false, err
	}
	if len(b) > limit {
		m.Extra = nil
		return w.truncated(m, ext, limit-opt)
	}
	return b, false, nil
}

// truncated packs m with TC, no additional section, and of its answer then
// authority sections the whole RRsets that fit in limit bytes (the OPT
// excluded), up to the first that does not.
func (w *worker) truncated(m *dns.Msg, ext uint8, limit int) ([]byte, bool, error) {
	t := &dns.Msg{MsgHdr: m.MsgHdr, Compress: true, Question: m.Question}
	t.Truncated = true
	sections := [2][]dns.RR{m.Answer, m.Ns}
	dsts := [2]*[]dns.RR{&t.Answer, &t.Ns}
fill:
	for k, rrs := range sections {
		for i := 0; i < len(rrs); {
			j := nextRRset(rrs, i)
			*dsts[k] = rrs[:j]
			if t.Len() > limit {
				*dsts[k] = rrs[:i]
				break fill
			}
			i = j
		}
	}
	b, err := w.packOPT(t, ext)
	return b, true, err
}

// nextRRset returns the end of the RRset that starts at rrs[i].
func nextRRset(rrs []dns.RR, i int) int {
	j := i + 1
	for j < len(rrs) && sameRRset(rrs[i], rrs[j]) {
		j++
	}
	return j
}

func sameRRset(a, b dns.RR) bool {
	ha, hb := a.Header(), b.Header()
	return ha.Rrtype == hb.Rrtype && ha.Class == hb.Class && strings.EqualFold(ha.Name, hb.Name)
}

// requiredGlue returns the test for "this additional RR is glue a referral
// cannot do without": in a referral (no AA, NOERROR, no answer, NS in
// authority), the addresses of name servers at or below the delegation.
func requiredGlue(res zones.Result) func(dns.RR) bool {
	none := func(dns.RR) bool { return false }
	if res.Authoritative || res.Rcode != dns.RcodeSuccess || len(res.Answer) != 0 {
		return none
	}
	var cut string
	var targets []string
	for _, rr := range res.Ns {
		if ns, ok := rr.(*dns.NS); ok {
			cut = ns.Hdr.Name
			targets = append(targets, ns.Ns)
		}
	}
	if cut == "" {
		return none
	}
	return func(rr dns.RR) bool {
		h := rr.Header()
		if h.Rrtype != dns.TypeA && h.Rrtype != dns.TypeAAAA {
			return false
		}
		if !dns.IsSubDomain(cut, h.Name) {
			return false
		}
		for _, t := range targets {
			if strings.EqualFold(t, h.Name) {
				return true
			}
		}
		return false
	}
}

// chaos answers the CHAOS class: TXT id.server./hostname.bind. and
// version.bind./version.server., TTL 0, AA off (we are not authoritative
// for CHAOS data; NSD and Knot clear it too); anything else is REFUSED,
// with the Extended DNS Error NSD sends (-1: none): 18 Prohibited for a
// name we know but do not tell, 21 Not Supported for the rest.
func (h *handler) chaos(name string, qtype uint16) (zones.Result, int) {
	var txt string
	known := true
	switch name {
	case "id.server.", "hostname.bind.":
		txt = h.identity
	case "version.bind.", "version.server.":
		txt = h.version
	default:
		known = false
	}
	switch {
	case qtype != dns.TypeTXT || !known:
		return zones.Result{Rcode: dns.RcodeRefused}, edeNotSupported
	case txt == "":
		return zones.Result{Rcode: dns.RcodeRefused}, edeProhibited
	}
	return zones.Result{
		Answer: []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS},
			Txt: []string{txt},
		}},
	}, -1
}

// txtEscape turns raw bytes into the presentation form miekg/dns packs
// back into the same bytes.
func txtEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			b.WriteByte('\\')
			b.WriteByte('0' + c/100)
			b.WriteByte('0' + c/10%10)
			b.WriteByte('0' + c%10)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
