package zones

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// checkRecord applies the record checks that miekg/dns's ZoneParser does
// not make but NSD's zone check does, so that what loads is what a peer
// would load and serve. src is the record's text in the zone file; rr is
// its canonical form (see canonicalRR). It returns "" when rr is good.
func checkRecord(rr dns.RR, src string) string {
	h := rr.Header()
	var toks []token // src's words, split only when a check reads them
	switch v := rr.(type) {
	case *dns.CAA:
		// RFC 8659 §4.1: the tag is 1 to 15 letters and digits.
		if !caaTag(v.Tag) {
			return fmt.Sprintf("CAA tag %q: must be 1 to 15 ASCII letters and digits (RFC 8659 §4.1)", v.Tag)
		}
	case *dns.TXT, *dns.SPF, *dns.AVC:
		// RFC 1035 §3.3: a character-string is at most 255 bytes. The
		// ZoneParser splits a longer one silently; NSD refuses it.
		toks = tokens(src)
		for _, tok := range toks {
			if n := tok.decodedLen(); n > 255 {
				return fmt.Sprintf("%s string of %d bytes: at most 255 (RFC 1035 §3.3)", dns.Type(h.Rrtype), n)
			}
		}
	}
	if _, unknown := rr.(*dns.RFC3597); unknown || !strings.Contains(src, `\#`) {
		return ""
	}
	// RFC 3597 §5: generic RDATA for a known type must be exactly that
	// type's wire form. The ZoneParser reads what it can and drops the
	// rest (a 5-byte A becomes an A).
	if toks == nil {
		toks = tokens(src)
	}
	for i, tok := range toks {
		if tok.quoted || tok.text != `\#` {
			continue
		}
		if i+1 >= len(toks) {
			return `generic RDATA (\#) without a length`
		}
		want, err := strconv.Atoi(toks[i+1].text)
		if err != nil {
			return fmt.Sprintf(`generic RDATA (\#): bad length %q`, toks[i+1].text)
		}
		var hexText strings.Builder
		for _, t := range toks[i+2:] {
			hexText.WriteString(t.text)
		}
		data, err := hex.DecodeString(hexText.String())
		if err != nil || len(data) != want {
			return fmt.Sprintf(`generic RDATA (\#): %d bytes declared, hex data does not match`, want)
		}
		packed, err := packRdata(rr)
		if err != nil {
			return err.Error()
		}
		if !bytes.Equal(packed, data) {
			return fmt.Sprintf(`generic RDATA (\#) of %d bytes is not a valid %s (its %d-byte reading is %q)`,
				want, dns.Type(h.Rrtype), len(packed), strings.TrimPrefix(rr.String(), h.String()))
		}
		return ""
	}
	return ""
}

func caaTag(tag string) bool {
	if len(tag) < 1 || len(tag) > 15 {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// packRdata returns rr's RDATA in uncompressed wire form.
func packRdata(rr dns.RR) ([]byte, error) {
	buf, err := packRR(rr)
	if err != nil {
		return nil, err
	}
	n := len(buf)
	end, ok := wireNameEnd(buf)
	if !ok || end+10 > n {
		return nil, fmt.Errorf("does not pack")
	}
	return buf[end+10 : n], nil
}

// token is one word of a record's text: a quoted string (quotes removed)
// or an unquoted run, escapes kept as written.
type token struct {
	text   string
	quoted bool
}

// decodedLen is the number of bytes the token stands for: "\DDD" and
// "\X" are one byte each.
func (t token) decodedLen() int {
	n := 0
	s := t.text
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				i += 3
			} else {
				i++
			}
		}
		n++
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// tokens splits zone file text into words as RFC 1035 §5.1 reads them:
// white space and parentheses separate, ";" starts a comment outside
// quotes, "\" escapes the next character.
func tokens(src string) []token {
	var out []token
	var cur strings.Builder
	inWord, quoted := false, false
	flush := func() {
		if inWord {
			out = append(out, token{text: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case quoted:
			switch c {
			case '\\':
				cur.WriteByte(c)
				if i+1 < len(src) {
					i++
					cur.WriteByte(src[i])
				}
			case '"':
				flush()
			default:
				cur.WriteByte(c)
			}
		case c == '"':
			flush()
			inWord, quoted = true, true
		case c == ';':
			flush()
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')':
			flush()
		case c == '\\':
			inWord = true
			cur.WriteByte(c)
			if i+1 < len(src) {
				i++
				cur.WriteByte(src[i])
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}
