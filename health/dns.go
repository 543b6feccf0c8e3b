package health

// The dns check's client, on miekg/dns (DESIGN.md §3: health is one of its
// users): one question, EDNS(0) advertising 1232 bytes, UDP with TCP on
// truncation, over the connection that dial made (so the phases are timed).

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

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
// is truncated; "tcp") and reads the reply.
func dnsExchange(ctx context.Context, transport, addr, qname string, qtype uint16, rd bool, phases *[]Phase) (*dnsMsg, error) {
	query, err := newQuery(qname, qtype, rd)
	if err != nil {
		return nil, err
	}
	if transport != "tcp" {
		msg, err := exchangeOnce(ctx, "udp", addr, query, phases)
		if err != nil || !msg.tc {
			return msg, err
		}
	}
	return exchangeOnce(ctx, "tcp", addr, query, phases)
}

// newQuery builds a query with a random ID, one question (class IN) and an
// EDNS(0) OPT record advertising 1232 bytes.
func newQuery(qname string, qtype uint16, rd bool) (*dns.Msg, error) {
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	name := dns.Fqdn(qname)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("bad query name %q", qname)
	}
	m := new(dns.Msg)
	m.Id = binary.BigEndian.Uint16(idb[:])
	m.RecursionDesired = rd
	m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
	m.SetEdns0(1232, false)
	return m, nil
}

func exchangeOnce(ctx context.Context, network, addr string, query *dns.Msg, phases *[]Phase) (*dnsMsg, error) {
	conn, err := dial(ctx, network, addr, phases)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	start := time.Now()
	c := &dns.Conn{Conn: conn, UDPSize: dns.MaxMsgSize}
	if err := c.WriteMsg(query); err != nil {
		return nil, err
	}
	for {
		raw, err := c.ReadMsgHeader(nil)
		if err != nil {
			return nil, fmt.Errorf("read reply over %s: %w", network, err)
		}
		if _, udp := conn.(*net.UDPConn); udp && (len(raw) < 2 || binary.BigEndian.Uint16(raw) != query.Id) {
			continue // not our reply (wrong ID): keep waiting until the deadline
		}
		*phases = append(*phases, Phase{"first_byte", time.Since(start)})
		msg, err := parseReply(raw, query)
		if err != nil {
			return nil, fmt.Errorf("bad reply over %s: %w", network, err)
		}
		return msg, nil
	}
}

// parseReply unpacks a reply and checks that it answers query: the ID, QR,
// and the question (names compared case-insensitively: 0x20). A truncated
// reply is only read for its header and question.
func parseReply(raw []byte, query *dns.Msg) (*dnsMsg, error) {
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		var h dns.Msg
		if len(raw) < 12 || h.Unpack(raw[:12]) != nil || !truncated(raw) {
			return nil, err
		}
		m = &h // TC set: the sections may be cut short; the header is what counts
	}
	if m.Id != query.Id {
		return nil, fmt.Errorf("id mismatch")
	}
	if !m.Response {
		return nil, fmt.Errorf("not a response")
	}
	if len(m.Question) > 0 {
		q, want := m.Question[0], query.Question[0]
		if !strings.EqualFold(q.Name, want.Name) || q.Qtype != want.Qtype || q.Qclass != want.Qclass {
			return nil, fmt.Errorf("reply is for another question")
		}
	}
	msg := &dnsMsg{rcode: m.Rcode, tc: m.Truncated}
	if msg.tc {
		return msg, nil
	}
	if an := int(binary.BigEndian.Uint16(raw[6:])); len(m.Answer) != an {
		// miekg/dns forgives counts that promise more than the message
		// holds; a check must not pass on such a reply.
		return nil, fmt.Errorf("answer section has %d records, header says %d", len(m.Answer), an)
	}
	for _, rr := range m.Answer {
		msg.answers = append(msg.answers, dnsRR{typ: rr.Header().Rrtype, data: rdataString(rr)})
	}
	return msg, nil
}

func truncated(raw []byte) bool { return len(raw) >= 4 && raw[2]&0x02 != 0 }

// rdataString renders the record data as a zone file does ("192.0.2.10",
// "10 mx.example.com."), except TXT, whose strings are joined without
// quotes ("v=spf1 mx -all").
func rdataString(rr dns.RR) string {
	if t, ok := rr.(*dns.TXT); ok {
		return strings.Join(t.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}
