package zones

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// maxErrors caps the errors reported for one zone file.
const maxErrors = 20

// defaultTTL is the TTL of a record written without one before any $TTL or
// explicit TTL: NSD's and Knot's 3600 seconds.
const defaultTTL = 3600

// maxChain bounds the in-zone CNAME chain followed by Lookup.
const maxChain = 12

// Parse reads one zone in RFC 1035 presentation format from r.
//
// origin is the zone's apex and the initial $ORIGIN; when it is "" the apex
// is taken from an $ORIGIN directive that precedes the first record. file
// names the source in errors, which read "file:line: message" and are
// joined with errors.Join when there are several.
func Parse(r io.Reader, origin, file string) (*Zone, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: read: %w", fileLabel(file), err)
	}
	return parse(data, origin, "", file)
}

func fileLabel(file string) string {
	if file == "" {
		return "<zone>"
	}
	return file
}

// parse is Parse on bytes. When origin is "" the apex is the leading
// $ORIGIN, else fallback (the Store's file name rule), else an error.
func parse(data []byte, origin, fallback, file string) (*Zone, error) {
	l := &loader{file: fileLabel(file), nodes: make(map[string]*lnode)}
	lines := splitLines(data)

	if origin == "" {
		origin = leadingOrigin(lines)
	}
	if origin == "" {
		origin = fallback
	}
	if origin == "" {
		return nil, fmt.Errorf("%s:1: no origin: no $ORIGIN before the first record", l.file)
	}
	if _, ok := dns.IsDomainName(origin); !ok {
		return nil, fmt.Errorf("%s:1: bad origin %q", l.file, origin)
	}
	canon, err := canonicalName(origin, true)
	if err != nil {
		return nil, fmt.Errorf("%s:1: bad origin %q: %w", l.file, origin, err)
	}
	l.origin = canon

	// Directives the ZoneParser would accept but we refuse: NSD knows
	// neither, and $INCLUDE would read outside the zone directory.
	for i, ln := range lines {
		if len(ln) == 0 || ln[0] != '$' {
			continue
		}
		word := strings.ToUpper(firstField(ln))
		switch word {
		case "$INCLUDE":
			l.errorf(i+1, "$INCLUDE not allowed")
		case "$GENERATE":
			l.errorf(i+1, "$GENERATE not supported")
		case "$ORIGIN", "$TTL":
		default:
			l.errorf(i+1, "unknown directive %s", word)
		}
	}
	if len(l.errs) > 0 {
		return nil, l.err()
	}

	br := &lineReader{data: data}
	zp := dns.NewZoneParser(br, l.origin, l.file)
	zp.SetIncludeAllowed(false)
	// A record with no TTL before any $TTL or explicit TTL gets 3600, as
	// NSD and Knot give it; after an explicit TTL it takes that one
	// (RFC 1035 §5.1), after $TTL the directive's (RFC 2308 §4).
	zp.SetDefaultTTL(defaultTTL)
	prevEnd := 0 // lines fully consumed before the current record
	last := 1
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		end := br.lines
		if br.off == len(data) && len(data) > 0 && data[len(data)-1] != '\n' {
			end++ // last line without newline
		}
		line := recordStart(lines, prevEnd, end)
		if line == 0 {
			line = last // a record from the same line ($GENERATE is refused, so rare)
		}
		last = line
		prevEnd = br.lines
		l.add(rr, line, source(lines, line, end))
		if len(l.errs) > maxErrors {
			break
		}
	}
	if err := zp.Err(); err != nil {
		return nil, l.parseError(err, br.lines+1)
	}
	return l.build()
}

// lineReader feeds the ZoneParser byte by byte (it uses io.ByteReader
// directly when offered), so that the lines consumed so far tell where the
// record just returned ends.
type lineReader struct {
	data  []byte
	off   int
	lines int // newlines consumed
}

func (r *lineReader) ReadByte() (byte, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	c := r.data[r.off]
	r.off++
	if c == '\n' {
		r.lines++
	}
	return c, nil
}

func (r *lineReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	c, _ := r.ReadByte()
	p[0] = c
	return 1, nil
}

func splitLines(data []byte) []string {
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	out := strings.Split(s, "\n")
	for i := range out {
		out[i] = strings.TrimSuffix(out[i], "\r")
	}
	return out
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// leadingOrigin returns the argument of an $ORIGIN that comes before the
// first record, or "".
func leadingOrigin(lines []string) string {
	for _, ln := range lines {
		t := ln
		if i := strings.IndexByte(t, ';'); i >= 0 {
			t = t[:i]
		}
		f := strings.Fields(t)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "$TTL":
			continue
		case "$ORIGIN":
			if len(f) > 1 && strings.HasSuffix(f[1], ".") {
				return f[1]
			}
		}
		return ""
	}
	return ""
}

// recordStart returns the 1-based number of the first line in (from, to]
// that can start a record: not blank, not only a comment, not a directive.
func recordStart(lines []string, from, to int) int {
	for i := from; i < to && i < len(lines); i++ {
		ln := lines[i]
		t := strings.TrimLeft(ln, " \t\r")
		if t == "" || t[0] == ';' || ln[0] == '$' || t[0] == ')' {
			continue
		}
		return i + 1
	}
	return 0
}

type posMsg struct {
	line int
	msg  string
}

// loader collects the records of one zone file and checks them.
type loader struct {
	file    string
	origin  string
	nodes   map[string]*lnode
	errs    []posMsg
	warns   []posMsg
	records int
}

type lnode struct {
	name string
	sets []*lset
}

type lset struct {
	typ   uint16
	rrs   []dns.RR
	lines []int
}

func (n *lnode) get(t uint16) *lset {
	for _, s := range n.sets {
		if s.typ == t {
			return s
		}
	}
	return nil
}

func (l *loader) errorf(line int, format string, args ...any) {
	l.errs = append(l.errs, posMsg{line, fmt.Sprintf(format, args...)})
}

func (l *loader) warnf(line int, format string, args ...any) {
	l.warns = append(l.warns, posMsg{line, fmt.Sprintf(format, args...)})
}

// err returns the collected errors, sorted by line and capped, joined.
func (l *loader) err() error {
	slices.SortStableFunc(l.errs, func(a, b posMsg) int { return cmp.Compare(a.line, b.line) })
	n := min(len(l.errs), maxErrors)
	errs := make([]error, 0, n+1)
	for _, e := range l.errs[:n] {
		errs = append(errs, fmt.Errorf("%s:%d: %s", l.file, e.line, e.msg))
	}
	if len(l.errs) > maxErrors {
		errs = append(errs, fmt.Errorf("%s: too many errors", l.file))
	}
	return errors.Join(errs...)
}

// parseError turns a ZoneParser error into "file:line: message".
func (l *loader) parseError(err error, fallback int) error {
	s := err.Error()
	s = strings.TrimPrefix(s, l.file+": ")
	s = strings.TrimPrefix(s, "dns: ")
	line := fallback
	if i := strings.LastIndex(s, " at line: "); i >= 0 {
		pos := s[i+len(" at line: "):]
		s = s[:i]
		if j := strings.IndexByte(pos, ':'); j >= 0 {
			pos = pos[:j]
		}
		if n, err := strconv.Atoi(pos); err == nil {
			line = n
		}
	}
	return fmt.Errorf("%s:%d: %s", l.file, line, s)
}

// metaTypes may appear in messages but never in a zone.
var metaTypes = map[uint16]bool{
	dns.TypeOPT: true, dns.TypeTSIG: true, dns.TypeTKEY: true, dns.TypeIXFR: true,
	dns.TypeAXFR: true, dns.TypeMAILA: true, dns.TypeMAILB: true, dns.TypeANY: true,
	dns.TypeNone: true,
}

// source returns the text of the record that starts on line (1-based) and
// ends before line end+1.
func source(lines []string, line, end int) string {
	if line < 1 || line > len(lines) {
		return ""
	}
	return strings.Join(lines[line-1:min(max(end, line), len(lines))], "\n")
}

// add checks one record on its own and files it under its owner. src is
// the record's text in the file. The record is kept in its canonical form
// (see canonicalRR): a record that does not pack is refused here, so that
// every record loaded can be sent.
func (l *loader) add(rr dns.RR, line int, src string) {
	canon, err := canonicalRR(rr)
	if err != nil {
		l.errorf(line, "%s %s: %v", rr.Header().Name, dns.Type(rr.Header().Rrtype), err)
		return
	}
	rr = canon
	h := rr.Header()
	name, t := h.Name, h.Rrtype
	if msg := checkRecord(rr, src); msg != "" {
		l.errorf(line, "%s %s: %s", name, dns.Type(t), msg)
		return
	}
	switch {
	case h.Class != dns.ClassINET:
		l.errorf(line, "%s: class %s not supported (only IN)", name, dns.ClassToString[h.Class]+classNum(h.Class))
		return
	case !dns.IsSubDomain(l.origin, name):
		l.errorf(line, "%s: out of zone data (zone %s)", name, l.origin)
		return
	case metaTypes[t]:
		l.errorf(line, "%s: meta type %s not allowed in a zone", name, dns.Type(t))
		return
	case t == dns.TypeSOA && name != l.origin:
		l.errorf(line, "%s: SOA record not at zone apex %s", name, l.origin)
		return
	}
	n := l.nodes[name]
	if n == nil {
		n = &lnode{name: name}
		l.nodes[name] = n
	}
	s := n.get(t)
	if s == nil {
		s = &lset{typ: t}
		n.sets = append(n.sets, s)
	}
	for _, old := range s.rrs {
		if dns.IsDuplicate(old, rr) {
			return // identical records are merged, as BIND and NSD do
		}
	}
	if len(s.rrs) > 0 && h.Ttl != s.rrs[0].Header().Ttl {
		l.warnf(line, "%s %s: TTL %d differs from the RRset's TTL %d; using %d",
			name, dns.Type(t), h.Ttl, s.rrs[0].Header().Ttl, s.rrs[0].Header().Ttl)
		h.Ttl = s.rrs[0].Header().Ttl
	}
	s.rrs = append(s.rrs, rr)
	s.lines = append(s.lines, line)
	l.records++
}

func classNum(c uint16) string {
	if _, ok := dns.ClassToString[c]; ok {
		return ""
	}
	return "CLASS" + strconv.Itoa(int(c))
}

// dnssecMeta are the types allowed next to a CNAME (RFC 2181 §10.1, 4035).
func dnssecMeta(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3
}

// build runs the zone-wide checks and freezes the zone.
func (l *loader) build() (*Zone, error) {
	apex := l.nodes[l.origin]
	firstLine := 1
	if apex != nil && len(apex.sets) > 0 {
		firstLine = apex.sets[0].lines[0]
	}
	var soa *dns.SOA
	if apex == nil || apex.get(dns.TypeSOA) == nil {
		l.errorf(firstLine, "zone %s has no SOA record at its apex", l.origin)
	} else {
		s := apex.get(dns.TypeSOA)
		soa = s.rrs[0].(*dns.SOA)
		if len(s.rrs) > 1 {
			l.errorf(s.lines[1], "zone %s has more than one SOA record", l.origin)
		}
	}
	if apex == nil || apex.get(dns.TypeNS) == nil {
		l.errorf(firstLine, "zone %s has no NS records at its apex", l.origin)
	}

	// Names in canonical order: parents before children.
	names := make([]string, 0, len(l.nodes))
	for name := range l.nodes {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(dns.CountLabel(a), dns.CountLabel(b)) })

	// cutOf: for each name with data, the delegation point at or above it.
	cutOf := func(name string) string {
		// walk up from name to just below the apex; the highest cut wins
		best := ""
		for s := name; s != l.origin; {
			if n := l.nodes[s]; n != nil && n.get(dns.TypeNS) != nil {
				best = s
			}
			i, end := dns.NextLabel(s, 0)
			if end {
				break
			}
			s = s[i:]
		}
		return best
	}

	for _, name := range names {
		n := l.nodes[name]
		// CNAME rules.
		if c := n.get(dns.TypeCNAME); c != nil {
			switch {
			case name == l.origin:
				l.errorf(c.lines[0], "%s: CNAME at zone apex", name)
			default:
				if len(c.rrs) > 1 {
					l.errorf(c.lines[1], "%s: more than one CNAME record", name)
				}
				for _, s := range n.sets {
					if s.typ != dns.TypeCNAME && !dnssecMeta(s.typ) {
						l.errorf(max(s.lines[0], c.lines[0]), "%s: CNAME and other data (%s)", name, dns.Type(s.typ))
						break
					}
				}
			}
		}
		// DNAME (RFC 6672 §2.4): one per owner, and no data below it
		// (§2.3: NSD refuses such a zone; the names would be occluded).
		if d := n.get(dns.TypeDNAME); d != nil && len(d.rrs) > 1 {
			l.errorf(d.lines[1], "%s: more than one DNAME record", name)
		}
		if o := dnameAbove(l, name); o != "" && len(n.sets) > 0 {
			l.errorf(n.sets[0].lines[0], "%s: data below the DNAME at %s (RFC 6672 §2.3)", name, o)
		}
		// Delegations: only glue below a cut, only NS/DS/glue at it.
		if name == l.origin {
			continue
		}
		cut := cutOf(name)
		if cut == "" {
			continue
		}
		for _, s := range n.sets {
			switch {
			case s.typ == dns.TypeA || s.typ == dns.TypeAAAA || dnssecMeta(s.typ):
			case name == cut && (s.typ == dns.TypeNS || s.typ == dns.TypeDS):
			case name == cut:
				l.errorf(s.lines[0], "%s %s: data at delegation point %s other than NS, DS and glue", name, dns.Type(s.typ), cut)
			default:
				l.errorf(s.lines[0], "%s %s: data below delegation point %s is not glue (A or AAAA)", name, dns.Type(s.typ), cut)
			}
		}
	}

	// Targets of NS, MX and SRV.
	for _, name := range names {
		n := l.nodes[name]
		for _, s := range n.sets {
			for i, rr := range s.rrs {
				var target, what string
				switch v := rr.(type) {
				case *dns.NS:
					target, what = v.Ns, "NS"
				case *dns.MX:
					target, what = v.Mx, "MX"
				case *dns.SRV:
					target, what = v.Target, "SRV"
				default:
					continue
				}
				target = strings.ToLower(target)
				if target == "." || !dns.IsSubDomain(l.origin, target) {
					continue
				}
				if what == "NS" && name != l.origin && cutOf(name) != name {
					continue // NS below a cut: already an error
				}
				tn := l.nodes[target]
				switch {
				case tn != nil && tn.get(dns.TypeCNAME) != nil:
					l.errorf(s.lines[i], "%s %s target %s is a CNAME (illegal)", name, what, target)
				case what == "NS" && (tn == nil || (tn.get(dns.TypeA) == nil && tn.get(dns.TypeAAAA) == nil)):
					l.errorf(s.lines[i], "%s NS target %s has no address records (A or AAAA)", name, target)
				}
			}
		}
	}

	if len(l.errs) > 0 {
		return nil, l.err()
	}
	return l.freeze(soa, names, cutOf), nil
}

// dnameAbove returns the highest owner of a DNAME strictly above name (up
// to and including the apex), or "".
func dnameAbove(l *loader, name string) string {
	best := ""
	for s := name; s != l.origin; {
		i, end := dns.NextLabel(s, 0)
		if end {
			break
		}
		s = s[i:]
		if n := l.nodes[s]; n != nil && n.get(dns.TypeDNAME) != nil {
			best = s
		}
	}
	return best
}

// freeze builds the immutable lookup structure.
func (l *loader) freeze(soa *dns.SOA, names []string, cutOf func(string) string) *Zone {
	z := &Zone{
		origin:  l.origin,
		file:    l.file,
		soa:     soa,
		nodes:   make(map[string]*node, len(names)*2),
		records: l.records,
	}
	neg := dns.Copy(soa).(*dns.SOA)
	neg.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	z.negSOA = []dns.RR{neg}
	for _, w := range l.warns {
		z.warnings = append(z.warnings, fmt.Sprintf("%s:%d: %s", l.file, w.line, w.msg))
	}

	// Existing names with data, then their empty non-terminal ancestors.
	for _, name := range names {
		ln := l.nodes[name]
		n := &node{name: name, rrsets: make([]rrset, 0, len(ln.sets))}
		for _, s := range ln.sets {
			n.rrsets = append(n.rrsets, rrset{typ: s.typ, rrs: slices.Clip(s.rrs), line: s.lines[0]})
		}
		slices.SortFunc(n.rrsets, func(a, b rrset) int { return cmp.Compare(a.typ, b.typ) })
		z.nodes[name] = n
	}
	for _, name := range names {
		for s := name; s != l.origin; {
			i, end := dns.NextLabel(s, 0)
			if end {
				break
			}
			s = s[i:]
			if _, ok := z.nodes[s]; ok {
				break
			}
			z.nodes[s] = &node{name: s}
		}
	}
	z.apex = z.nodes[l.origin]
	for name, n := range z.nodes {
		if name != l.origin {
			if c := cutOf(name); c != "" {
				n.cut = z.nodes[c]
			}
		}
		if w, ok := z.nodes["*."+name]; ok {
			n.wild = w
		}
		if o := dnameAbove(l, name); o != "" {
			n.dname = z.nodes[o]
		}
	}
	return z
}
