package zones

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// The one canonical form of a domain name, shared by names read from zone
// files and names read from the wire: the name's wire bytes as miekg/dns
// unpacks them. A dot inside a label is "\.", a space "\ " (and the other
// characters the presentation format treats specially get a backslash),
// bytes outside printable ASCII are "\DDD", and every other byte is
// itself; a letter written "\065" or "\097" becomes "A" or "a". Owner
// names are in addition lower-cased (ASCII only, RFC 4343), names inside
// RDATA keep their case.
//
// Canonical forms are pure ASCII, so strings.ToLower and strings.EqualFold
// on them act on ASCII letters only, as DNS comparison does.

// canonicalName returns name in the canonical form, lower-cased when lower.
// name is an absolute name in presentation format.
func canonicalName(name string, lower bool) (string, error) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return "", err
	}
	if lower {
		lowerWire(buf[:n])
	}
	out, _, err := dns.UnpackDomainName(buf[:n], 0)
	return out, err
}

// lowerWire lower-cases the ASCII letters of an uncompressed wire name in
// place. Label lengths (at most 63) are never letters.
func lowerWire(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// lookupName is the canonical lower-case form of a question name. The
// server passes names already in that form (unpacked from the wire), so
// the common case costs a scan and a ToLower; names with escapes are
// rewritten through their wire form.
func lookupName(qname string) string {
	if strings.IndexByte(qname, '\\') < 0 {
		return strings.ToLower(qname)
	}
	if c, err := canonicalName(qname, true); err == nil {
		return c
	}
	return strings.ToLower(qname)
}

// canonicalRR returns a copy of rr whose owner and RDATA names are in the
// canonical form (the owner lower-cased), made by packing rr without
// compression and unpacking it, so that what is kept is exactly what will
// be sent. It fails when rr does not pack, and when the packed form does not
// read back into the same bytes (RDATA that miekg/dns would send otherwise
// than it holds it).
func canonicalRR(rr dns.RR) (dns.RR, error) {
	buf, err := packRR(rr)
	if err != nil {
		return nil, err
	}
	n := len(buf)
	end, ok := wireNameEnd(buf)
	if !ok {
		return nil, fmt.Errorf("owner name does not pack")
	}
	lowerWire(buf[:end])
	out, off, err := dns.UnpackRR(buf, 0)
	if err != nil {
		return nil, fmt.Errorf("does not read back: %w", err)
	}
	if off != n {
		return nil, fmt.Errorf("does not read back: %d of %d bytes", off, n)
	}
	again := make([]byte, n+64)
	m, err := dns.PackRR(out, again, 0, nil, false)
	if err != nil {
		return nil, err
	}
	if string(again[:m]) != string(buf) {
		return nil, fmt.Errorf("does not pack back into the same bytes")
	}
	return out, nil
}

// wireNameEnd returns the length of the uncompressed name at the start of b.
func wireNameEnd(b []byte) (int, bool) {
	off := 0
	for off < len(b) {
		l := int(b[off])
		if l == 0 {
			return off + 1, true
		}
		if l&0xc0 != 0 {
			return 0, false
		}
		off += l + 1
	}
	return 0, false
}

// packRR returns rr in uncompressed wire form, in a fresh buffer of about
// its size: records are packed one by one at load, and a 64 kB buffer each
// would be most of the loading's allocation. A record that does not fit
// its computed length is packed again in a message-sized buffer, so that
// it packs (or fails) exactly as it would there.
func packRR(rr dns.RR) ([]byte, error) {
	buf := make([]byte, dns.Len(rr)+64)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		buf = make([]byte, dns.MaxMsgSize)
		if n, err = dns.PackRR(rr, buf, 0, nil, false); err != nil {
			return nil, err
		}
	}
	return buf[:n], nil
}
