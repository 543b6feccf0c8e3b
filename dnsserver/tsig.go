package dnsserver

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TSIGKey is a shared secret for TSIG (RFC 8945): Name is the key's name
// (an FQDN, any case), Algorithm one of miekg/dns's HMAC names
// (dns.HmacSHA256 "hmac-sha256.", ...), Secret the key in base64.
type TSIGKey struct {
	Name, Algorithm, Secret string
}

// signed answers a query that carries a TSIG: with a key we know and a
// MAC and time that verify, it is answered as any query and the reply (each
// message of a transfer) is signed (RFC 8945 §5.3, the messages after the
// first with the timers only, §5.3.1); otherwise NOTAUTH with BADKEY,
// BADSIG or BADTIME (§5.2).
func (w *worker) signed(dst, msg []byte, from netip.Addr) []byte {
	q := &w.req
	rr, _, err := dns.UnpackRR(msg[:q.tsigEnd], q.tsigOff)
	t, ok := rr.(*dns.TSIG)
	if err != nil || !ok {
		w.ctr.malformed.Add(1)
		return w.errorReply(dst, msg, dns.RcodeFormatError)
	}
	key, ok := w.h.keys[strings.ToLower(dns.Fqdn(t.Hdr.Name))]
	if !ok || !strings.EqualFold(dns.Fqdn(key.Algorithm), dns.Fqdn(t.Algorithm)) {
		return w.tsigError(dst, msg, t, dns.RcodeBadKey)
	}
	if err := dns.TsigVerify(msg, key.Secret, "", false); err != nil {
		code := uint16(dns.RcodeBadSig)
		if errors.Is(err, dns.ErrTime) {
			code = dns.RcodeBadTime
		}
		return w.tsigError(dst, msg, t, code)
	}
	start := len(dst)
	w.tsigKey, w.tsigLen = key.Name, tsigRoom(key)
	dst = w.dispatch(dst, msg, from)
	w.tsigKey, w.tsigLen = "", 0
	if len(dst) == start {
		return dst
	}
	first, mac, err := sign(dst[start:], key, t.MAC, false)
	if err != nil {
		return w.errorReply(dst[:start], msg, dns.RcodeServerFailure)
	}
	for i, m := range w.xfr {
		if w.xfr[i], mac, err = sign(m, key, mac, true); err != nil {
			w.xfr = nil
			return w.errorReply(dst[:start], msg, dns.RcodeServerFailure)
		}
	}
	return append(dst[:start], first...)
}

// macSize is the MAC length of each HMAC algorithm miekg/dns signs with
// (RFC 8945 §6), by lower-case FQDN name.
var macSize = map[string]int{
	dns.HmacSHA1:   sha1.Size,
	dns.HmacSHA224: sha256.Size224,
	dns.HmacSHA256: sha256.Size,
	dns.HmacSHA384: sha512.Size384,
	dns.HmacSHA512: sha512.Size,
}

// tsigRoom is the most bytes sign adds to a reply signed with key: the TSIG
// RR (RFC 8945 §4.2) with the key's name as owner, no compression, the
// algorithm's MAC and no other data, so that a UDP reply fits the client's
// size with it.
func tsigRoom(key TSIGKey) int {
	name := len(dns.Fqdn(key.Name)) + 1 // wire form: a length octet per label, the root
	alg := len(dns.Fqdn(key.Algorithm)) + 1
	mac, ok := macSize[strings.ToLower(dns.Fqdn(key.Algorithm))]
	if !ok {
		mac = sha512.Size // the largest
	}
	// type, class, TTL, RDLENGTH; time signed, fudge, MAC size; original
	// ID, error, other length
	return name + 10 + alg + 6 + 2 + 2 + mac + 2 + 2 + 2
}

// sign returns reply signed with key, chained to requestMAC, and its MAC.
func sign(reply []byte, key TSIGKey, requestMAC string, timersOnly bool) ([]byte, string, error) {
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		return nil, "", err
	}
	m.Compress = true
	m.Extra = append(m.Extra, &dns.TSIG{
		Hdr:        dns.RR_Header{Name: strings.ToLower(dns.Fqdn(key.Name)), Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  strings.ToLower(dns.Fqdn(key.Algorithm)),
		Fudge:      300,
		TimeSigned: uint64(time.Now().Unix()),
		OrigId:     m.Id,
	})
	return dns.TsigGenerate(m, key.Secret, requestMAC, timersOnly)
}

// keyOK reports whether the current query meets the key rule of transfers:
// when keys are configured, a transfer must be signed with one of them.
func (w *worker) keyOK() bool {
	return len(w.h.keys) == 0 || w.tsigKey != ""
}
