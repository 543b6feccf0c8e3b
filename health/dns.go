package health

// A minimal DNS client for the dns check, on the standard library only (the
// project keeps miekg/dns inside zones): one question, EDNS(0), UDP with TCP
// on truncation, and enough parsing to read the rcode and the answer records.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

var rcodeNames = map[int]string{}

func init() {
	for name, code := range config.DNSRCodes {
		rcodeNames[code] = name
	}
}

func rcodeName(rc int) string {
	if n, ok := rcodeNames[rc]; ok {
		return n
	}
	return "RCODE" + strconv.Itoa(rc)
}

var typeNames = map[uint16]string{}

func init() {
	for name, t := range config.DNSTypes {
		typeNames[t] = name
	}
}

// newDNS asks the probed server one question and checks the rcode and,
// optionally, that one answer record's data matches a regexp.
func newDNS(c *config.Check) (ProbeFunc, error) {
	qtype, ok := config.DNSTypes[c.QType]
	if !ok {
		return nil, fmt.Errorf("unsupported query type %q", c.QType)
	}
	wantRcode, ok := config.DNSRCodes[c.RCode]
	if !ok {
		return nil, fmt.Errorf("unknown rcode %q", c.RCode)
	}
	return func(ctx context.Context, t Target) Result {
		var res Result
		q := fmt.Sprintf("%s %s @%s", c.Query, c.QType, t.HostPort())
		msg, err := dnsExchange(ctx, c.Transport, t.HostPort(), c.Query, qtype, c.RecursionDesired, &res.Phases)
		if err != nil {
			res.Err = fmt.Errorf("%s: %w", q, deadlineErr(ctx, err))
			return res
		}
		if msg.rcode != wantRcode {
			res.Err = fmt.Errorf("%s: rcode %s, want %s", q, rcodeName(msg.rcode), c.RCode)
			return res
		}
		var data []string
		for _, rr := range msg.answers {
			data = append(data, rr.data)
		}
		if c.Answer.Set() {
			for _, d := range data {
				if c.Answer.MatchString(d) {
					res.Detail = fmt.Sprintf("%s: %s", rcodeName(msg.rcode), clip(d, 100))
					return res
				}
			}
			res.Err = fmt.Errorf("%s: no answer matches %q (answers: %s)", q, c.Answer.String(), clip(strings.Join(data, ", "), 200))
			return res
		}
		res.Detail = fmt.Sprintf("%s, %d answers", rcodeName(msg.rcode), len(data))
		return res
	}, nil
}

type dnsRR struct {
	typ  uint16
	data string // presentation of the record data
}

type dnsMsg struct {
	rcode   int
	tc      bool
	answers []dnsRR
}

// dnsExchange sends one query over transport ("udp": and TCP if the answer
// is truncated; "tcp") and parses the reply.
func dnsExchange(ctx context.Context, transport, addr, qname string, qtype uint16, rd bool, phases *[]Phase) (*dnsMsg, error) {
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	id := binary.BigEndian.Uint16(idb[:])
	query, err := packQuery(id, qname, qtype, rd)
	if err != nil {
		return nil, err
	}
	if transport != "tcp" {
		msg, err := exchangeOnce(ctx, "udp", addr, id, query, phases)
		if err != nil || !msg.tc {
			return msg, err
		}
	}
	return exchangeOnce(ctx, "tcp", addr, id, query, phases)
}

func exchangeOnce(ctx context.Context, network, addr string, id uint16, query []byte, phases *[]Phase) (*dnsMsg, error) {
	conn, err := dial(ctx, network, addr, phases)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	start := time.Now()
	var reply []byte
	if network == "tcp" {
		buf := make([]byte, 2+len(query))
		binary.BigEndian.PutUint16(buf, uint16(len(query)))
		copy(buf[2:], query)
		if _, err := conn.Write(buf); err != nil {
			return nil, err
		}
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, fmt.Errorf("read reply over tcp: %w", err)
		}
		reply = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, reply); err != nil {
			return nil, fmt.Errorf("read reply over tcp: %w", err)
		}
	} else {
		if _, err := conn.Write(query); err != nil {
			return nil, err
		}
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("read reply over udp: %w", err)
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) == id {
				reply = buf[:n]
				break
			}
			// Not our reply (wrong ID): keep waiting until the deadline.
		}
	}
	*phases = append(*phases, Phase{"first_byte", time.Since(start)})
	msg, err := parseReply(reply, id, query)
	if err != nil {
		return nil, fmt.Errorf("bad reply over %s: %w", network, err)
	}
	return msg, nil
}

// packQuery builds a query with one question and an EDNS(0) OPT record
// advertising 1232 bytes.
func packQuery(id uint16, qname string, qtype uint16, rd bool) ([]byte, error) {
	b := make([]byte, 12, 64)
	binary.BigEndian.PutUint16(b[0:], id)
	if rd {
		b[2] = 0x01 // RD
	}
	binary.BigEndian.PutUint16(b[4:], 1)  // QDCOUNT
	binary.BigEndian.PutUint16(b[10:], 1) // ARCOUNT: OPT
	name := strings.TrimSuffix(qname, ".")
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > 63 {
				return nil, fmt.Errorf("bad query name %q", qname)
			}
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1) // IN
	// OPT: root name, type 41, class = UDP size, TTL 0, no options.
	b = append(b, 0, 0, 41, 1232>>8, 1232&0xff, 0, 0, 0, 0, 0, 0)
	return b, nil
}

var errShort = errors.New("message too short")

// parseReply reads the header, checks that it answers our question, and
// parses the answer section.
func parseReply(m []byte, id uint16, query []byte) (*dnsMsg, error) {
	if len(m) < 12 {
		return nil, errShort
	}
	if binary.BigEndian.Uint16(m) != id {
		return nil, fmt.Errorf("id mismatch")
	}
	flags := binary.BigEndian.Uint16(m[2:])
	if flags&0x8000 == 0 {
		return nil, fmt.Errorf("not a response")
	}
	msg := &dnsMsg{rcode: int(flags & 0xf), tc: flags&0x0200 != 0}
	qd := int(binary.BigEndian.Uint16(m[4:]))
	an := int(binary.BigEndian.Uint16(m[6:]))
	off := 12
	if qd > 0 {
		// The question must be ours (names compared case-insensitively: 0x20).
		qlen := len(query) - 12 - 11 // our question, without the OPT record
		if len(m) < off+qlen || !strings.EqualFold(string(m[off:off+qlen]), string(query[12:12+qlen])) {
			return nil, fmt.Errorf("reply is for another question")
		}
		off += qlen
		for i := 1; i < qd; i++ {
			var err error
			if _, off, err = readName(m, off); err != nil {
				return nil, err
			}
			off += 4
		}
	}
	if msg.tc {
		return msg, nil
	}
	for i := 0; i < an; i++ {
		var err error
		if _, off, err = readName(m, off); err != nil {
			return nil, err
		}
		if len(m) < off+10 {
			return nil, errShort
		}
		typ := binary.BigEndian.Uint16(m[off:])
		rdlen := int(binary.BigEndian.Uint16(m[off+8:]))
		off += 10
		if len(m) < off+rdlen {
			return nil, errShort
		}
		data, err := rdataString(m, off, rdlen, typ)
		if err != nil {
			return nil, fmt.Errorf("answer %d: %w", i+1, err)
		}
		msg.answers = append(msg.answers, dnsRR{typ: typ, data: data})
		off += rdlen
	}
	return msg, nil
}

// readName reads a possibly compressed name at off and returns it in
// presentation form (with a final dot) and the offset after it.
func readName(m []byte, off int) (string, int, error) {
	var b strings.Builder
	end := -1
	for jumps := 0; ; {
		if off >= len(m) {
			return "", 0, errShort
		}
		l := int(m[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			if b.Len() == 0 {
				b.WriteByte('.')
			}
			return b.String(), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(m) {
				return "", 0, errShort
			}
			if end < 0 {
				end = off + 2
			}
			if jumps++; jumps > 64 {
				return "", 0, fmt.Errorf("compression loop")
			}
			off = int(binary.BigEndian.Uint16(m[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, fmt.Errorf("bad label type")
		default:
			if off+1+l > len(m) {
				return "", 0, errShort
			}
			for _, c := range m[off+1 : off+1+l] {
				switch {
				case c == '.' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c < '!' || c > '~':
					fmt.Fprintf(&b, "\\%03d", c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('.')
			if b.Len() > 1024 {
				return "", 0, fmt.Errorf("name too long")
			}
			off += 1 + l
		}
	}
}

// rdataString renders the record data of the common types as a zone file
// would (TXT strings are joined without quotes); other types as RFC 3597 \#.
func rdataString(m []byte, off, n int, typ uint16) (string, error) {
	rd := m[off : off+n]
	name := func(at int) (string, int, error) { return readName(m, at) }
	switch typ {
	case 1, 28: // A, AAAA
		ip, ok := netip.AddrFromSlice(rd)
		if !ok || (typ == 1) != (n == 4) {
			return "", fmt.Errorf("bad %s record length %d", typeNames[typ], n)
		}
		return ip.String(), nil
	case 2, 5, 12: // NS, CNAME, PTR
		s, _, err := name(off)
		return s, err
	case 15: // MX
		if n < 3 {
			return "", errShort
		}
		s, _, err := name(off + 2)
		return fmt.Sprintf("%d %s", binary.BigEndian.Uint16(rd), s), err
	case 33: // SRV
		if n < 7 {
			return "", errShort
		}
		s, _, err := name(off + 6)
		return fmt.Sprintf("%d %d %d %s", binary.BigEndian.Uint16(rd), binary.BigEndian.Uint16(rd[2:]), binary.BigEndian.Uint16(rd[4:]), s), err
	case 16: // TXT
		var b strings.Builder
		for i := 0; i < n; {
			l := int(rd[i])
			if i+1+l > n {
				return "", errShort
			}
			b.Write(rd[i+1 : i+1+l])
			i += 1 + l
		}
		return b.String(), nil
	case 6: // SOA
		mname, o, err := name(off)
		if err != nil {
			return "", err
		}
		rname, o, err := name(o)
		if err != nil {
			return "", err
		}
		if o+20 > off+n {
			return "", errShort
		}
		v := m[o:]
		return fmt.Sprintf("%s %s %d %d %d %d %d", mname, rname, binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:]),
			binary.BigEndian.Uint32(v[8:]), binary.BigEndian.Uint32(v[12:]), binary.BigEndian.Uint32(v[16:])), nil
	}
	return fmt.Sprintf("\\# %d %s", n, hex.EncodeToString(rd)), nil
}
