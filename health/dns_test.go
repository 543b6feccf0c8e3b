package health

import (
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// startDNS runs a small authoritative server (miekg/dns, test only) on
// 127.0.0.1, UDP and TCP on the same port.
func startDNS(t *testing.T) string {
	t.Helper()
	mux := dns.NewServeMux()
	mux.HandleFunc("example.com.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		rr := func(s string) {
			x, err := dns.NewRR(s)
			if err != nil {
				panic(err)
			}
			m.Answer = append(m.Answer, x)
		}
		switch strings.ToLower(q.Name) + " " + dns.TypeToString[q.Qtype] {
		case "cas.example.com. A":
			rr("cas.example.com. 30 IN A 192.0.2.10")
			rr("cas.example.com. 30 IN A 192.0.2.11")
		case "cas.example.com. AAAA":
			rr("cas.example.com. 30 IN AAAA 2001:db8::10")
		case "owa.example.com. A":
			rr("owa.example.com. 30 IN CNAME cas.example.com.")
			rr("cas.example.com. 30 IN A 192.0.2.10")
		case "example.com. MX":
			rr("example.com. 30 IN MX 10 cas.example.com.")
		case "example.com. TXT":
			rr(`example.com. 30 IN TXT "v=spf1 " "mx -all"`)
		case "big.example.com. TXT":
			for i := 0; i < 20; i++ {
				rr(`big.example.com. 30 IN TXT "` + strings.Repeat("x", 200) + `"`)
			}
		case "broken.example.com. A":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			size := 512
			if o := r.IsEdns0(); o != nil {
				size = int(o.UDPSize())
			}
			m.Truncate(size)
		}
		w.WriteMsg(m)
	})
	var pc net.PacketConn
	var l net.Listener
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if i > 10 {
			t.Fatal(err)
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: mux}, {Listener: l, Handler: mux}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func TestDNS(t *testing.T) {
	addr := startDNS(t)
	cases := []struct {
		name, check, err, detail string
	}{
		{"A answer", "query = \"cas.example.com\"\nanswer = '^192\\.0\\.2\\.11$'", "", "NOERROR: 192.0.2.11"},
		{"AAAA", "query = \"cas.example.com\"\nqtype = \"AAAA\"\nanswer = '^2001:db8::10$'", "", ""},
		{"CNAME chain", "query = \"owa.example.com\"\nanswer = '^cas\\.example\\.com\\.$'", "", ""},
		{"MX", "query = \"example.com\"\nqtype = \"MX\"\nanswer = '^10 cas\\.example\\.com\\.$'", "", ""},
		{"TXT strings joined", "query = \"example.com\"\nqtype = \"TXT\"\nanswer = '^v=spf1 mx -all$'", "", ""},
		{"answer does not match", "query = \"cas.example.com\"\nanswer = '^198\\.51\\.'", "no answer matches \"^198\\\\.51\\\\.\" (answers: 192.0.2.10, 192.0.2.11)", ""},
		{"NXDOMAIN", "query = \"nope.example.com\"", "rcode NXDOMAIN, want NOERROR", ""},
		{"expected NXDOMAIN", "query = \"nope.example.com\"\nrcode = \"NXDOMAIN\"", "", ""},
		{"SERVFAIL", "query = \"broken.example.com\"", "rcode SERVFAIL", ""},
		{"truncated over UDP, retried over TCP", "query = \"big.example.com\"\nqtype = \"TXT\"\nanswer = '^x{200}$'", "", ""},
		{"over TCP", "query = \"cas.example.com\"\ntransport = \"tcp\"", "", "NOERROR, 2 answers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, parseCheck(t, "type = \"dns\"\n"+tc.check), false, addr)
			wantResult(t, r, tc.err)
			if !strings.Contains(r.Detail, tc.detail) {
				t.Errorf("detail = %q, want %q", r.Detail, tc.detail)
			}
		})
	}
	t.Run("no server", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0") // bound, never answers
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		r := runProbe(t, parseCheck(t, "type = \"dns\"\nquery = \"cas.example.com\"\ninterval = \"1s\"\ntimeout = \"200ms\""), false, pc.LocalAddr().String())
		wantResult(t, r, "timed out")
	})
}

func TestDNSParseRejectsGarbage(t *testing.T) {
	q, err := newQuery("cas.example.com.", dns.TypeA, false)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := q.Pack()
	reply := append([]byte(nil), wire...)
	reply[2] |= 0x80 // QR
	reply[7] = 1     // ANCOUNT 1, but no answer follows
	other := q.Copy()
	other.Response = true
	other.Question[0].Name = "owa.example.com."
	otherWire, _ := other.Pack()
	cases := map[string][]byte{
		"short":          reply[:5],
		"wrong id":       append([]byte{reply[0] ^ 1, reply[1]}, reply[2:]...),
		"not response":   wire,
		"missing rr":     reply[:len(reply)-11],
		"pointer loop":   append(append([]byte(nil), reply[:len(reply)-11]...), 0xc0, byte(len(reply)-11)),
		"other question": otherWire,
	}
	for name, m := range cases {
		if _, err := parseReply(m, q); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// FuzzParseReply: no reply, however malformed, makes the parser panic or loop.
func FuzzParseReply(f *testing.F) {
	q, err := newQuery("cas.example.com.", dns.TypeA, false)
	if err != nil {
		f.Fatal(err)
	}
	q.Id = 7
	wire, _ := q.Pack()
	m := new(dns.Msg)
	m.SetQuestion("cas.example.com.", dns.TypeA)
	m.Id = 7
	m.Response = true
	for _, s := range []string{"cas.example.com. 30 IN A 192.0.2.10", "cas.example.com. 30 IN CNAME owa.example.com.",
		"cas.example.com. 30 IN MX 10 mx.example.com.", `cas.example.com. 30 IN TXT "a" "b"`,
		"cas.example.com. 30 IN SOA ns1.example.com. h.example.com. 1 2 3 4 5", "cas.example.com. 30 IN SRV 1 2 3 x.example.com."} {
		rr, _ := dns.NewRR(s)
		m.Answer = append(m.Answer, rr)
	}
	packed, _ := m.Pack()
	m.Compress = true
	compressed, _ := m.Pack()
	f.Add(packed)
	f.Add(compressed)
	f.Add(wire)
	f.Fuzz(func(t *testing.T, b []byte) {
		parseReply(b, q)
	})
}

// TestDNSAnswerData: what a check's answer regexp is matched against, per
// type: the zone file form of the RDATA, TXT strings joined.
func TestDNSAnswerData(t *testing.T) {
	for in, want := range map[string]string{
		"x. 30 IN A 192.0.2.10":                                  "192.0.2.10",
		"x. 30 IN AAAA 2001:db8::10":                             "2001:db8::10",
		"x. 30 IN CNAME cas.example.com.":                        "cas.example.com.",
		"x. 30 IN MX 10 mx.example.com.":                         "10 mx.example.com.",
		"x. 30 IN SRV 1 2 3 x.example.com.":                      "1 2 3 x.example.com.",
		`x. 30 IN TXT "v=spf1 " "mx -all"`:                       "v=spf1 mx -all",
		"x. 30 IN SOA ns1.example.com. h.example.com. 1 2 3 4 5": "ns1.example.com. h.example.com. 1 2 3 4 5",
		`x. 30 IN CAA 0 issue "ca.example.net"`:                  `0 issue "ca.example.net"`,
	} {
		rr, err := dns.NewRR(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := rdataString(rr); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
