package health

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestTLS(t *testing.T) {
	p := newPKI(t)
	start := func(cert tls.Certificate) string {
		l := listen(t)
		serve(l, func(c net.Conn) {
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			tc.Handshake()
		})
		return l.Addr().String()
	}
	good := start(p.valid(t, "cas.example.com"))
	ipOnly := start(p.valid(t, "127.0.0.1"))
	wrong := start(p.valid(t, "other.example.com"))
	expired := start(p.leaf(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), false, "cas.example.com"))
	soon := start(p.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(5*24*time.Hour), false, "cas.example.com"))
	plain := listen(t)
	serve(plain, func(c net.Conn) { c.Write([]byte("220 not tls\r\n")); c.Read(make([]byte, 1)) })

	ca := fmt.Sprintf("ca_file = %q\n", p.caFile)
	cases := []struct {
		name, check, addr, err, warn string
	}{
		{"valid", "host = \"cas.example.com\"\n" + ca, good, "", ""},
		{"verified against the probed IP", ca, ipOnly, "", ""},
		{"unknown CA", "host = \"cas.example.com\"\n", good, "unknown authority", ""},
		{"wrong name", "host = \"cas.example.com\"\n" + ca, wrong, "not cas.example.com", ""},
		{"expired", "host = \"cas.example.com\"\n" + ca, expired, "expired", ""},
		{"expired but insecure warns", "host = \"cas.example.com\"\ninsecure = true\n", expired, "", "expired 1h"},
		{"default warning window (14 days)", "host = \"cas.example.com\"\n" + ca, soon, "", "expires in 4d"},
		{"min_validity", "host = \"cas.example.com\"\nmin_validity = \"168h\"\n" + ca, soon, "within min_validity 7d", ""},
		{"not tls", "host = \"cas.example.com\"\n" + ca + "interval = \"1s\"\ntimeout = \"500ms\"\n", plain.Addr().String(), "tls handshake", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, parseCheck(t, "type = \"tls\"\n"+tc.check), false, tc.addr)
			wantResult(t, r, tc.err)
			if tc.warn == "" && r.Warning != "" || !strings.Contains(r.Warning, tc.warn) {
				t.Errorf("warning = %q, want %q", r.Warning, tc.warn)
			}
		})
	}
}
