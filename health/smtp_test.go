package health

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// smtpResponder is a small SMTP server: banner, EHLO (with STARTTLS when it
// has a certificate), STARTTLS, QUIT.
type smtpResponder struct {
	banner   string // "" = say nothing
	cert     *tls.Certificate
	ehloSeen chan string
}

func (s *smtpResponder) start(t *testing.T) string {
	t.Helper()
	l := listen(t)
	serve(l, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if s.banner == "" {
			c.Read(make([]byte, 1)) // silent until the client gives up
			return
		}
		fmt.Fprintf(c, "%s\r\n", s.banner)
		if !strings.HasPrefix(s.banner, "220") {
			return
		}
		r := bufio.NewReader(c)
		var w net.Conn = c
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd := strings.ToUpper(strings.TrimSpace(line))
			switch {
			case strings.HasPrefix(cmd, "EHLO "):
				if s.ehloSeen != nil {
					select {
					case s.ehloSeen <- strings.TrimSpace(line[5:]):
					default:
					}
				}
				fmt.Fprint(w, "250-mx.example.com hello\r\n250-PIPELINING\r\n")
				if _, isTLS := w.(*tls.Conn); s.cert != nil && !isTLS {
					fmt.Fprint(w, "250-STARTTLS\r\n")
				}
				fmt.Fprint(w, "250 8BITMIME\r\n")
			case cmd == "STARTTLS" && s.cert != nil:
				fmt.Fprint(w, "220 go ahead\r\n")
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*s.cert}})
				if tc.Handshake() != nil {
					return
				}
				w, r = tc, bufio.NewReader(tc)
			case cmd == "QUIT":
				fmt.Fprint(w, "221 bye\r\n")
				return
			default:
				fmt.Fprint(w, "502 not implemented\r\n")
			}
		}
	})
	return l.Addr().String()
}

func TestSMTP(t *testing.T) {
	p := newPKI(t)
	good := p.valid(t, "mail.example.com")
	wrong := p.valid(t, "other.example.com")
	ehlo := make(chan string, 1)
	plainAddr := (&smtpResponder{banner: "220 mx.example.com ESMTP", ehloSeen: ehlo}).start(t)
	tlsAddr := (&smtpResponder{banner: "220 mx.example.com ESMTP", cert: &good}).start(t)
	wrongAddr := (&smtpResponder{banner: "220 mx.example.com ESMTP", cert: &wrong}).start(t)
	busyAddr := (&smtpResponder{banner: "421 4.3.2 too busy, try later"}).start(t)
	silentAddr := (&smtpResponder{}).start(t)

	ca := fmt.Sprintf("ca_file = %q\n", p.caFile)
	cases := []struct {
		name, check, addr, err string
	}{
		{"banner and EHLO", "ehlo = \"probe.example.net\"\n", plainAddr, ""},
		{"421 banner", "", busyAddr, "smtp banner: 421 \"4.3.2 too busy"},
		{"no banner", "interval = \"1s\"\ntimeout = \"300ms\"\n", silentAddr, "smtp banner: timed out"},
		{"STARTTLS verified", "starttls = true\nhost = \"mail.example.com\"\n" + ca, tlsAddr, ""},
		{"STARTTLS not offered", "starttls = true\nhost = \"mail.example.com\"\n" + ca, plainAddr, "STARTTLS not offered"},
		{"STARTTLS wrong name", "starttls = true\nhost = \"mail.example.com\"\n" + ca, wrongAddr, "not mail.example.com"},
		{"STARTTLS unknown CA", "starttls = true\nhost = \"mail.example.com\"\n", tlsAddr, "unknown authority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, parseCheck(t, "type = \"smtp\"\n"+tc.check), false, tc.addr)
			wantResult(t, r, tc.err)
		})
	}
	select {
	case got := <-ehlo:
		if got != "probe.example.net" {
			t.Errorf("EHLO %q, want the configured name", got)
		}
	default:
		t.Error("the responder saw no EHLO")
	}
}
