package health

import (
	"bufio"
	"net"
	"testing"
)

func TestTCP(t *testing.T) {
	// A banner server, and an echo server that answers PING with PONG.
	banner := listen(t)
	serve(banner, func(c net.Conn) { c.Write([]byte("* OK IMAP4rev1 ready\r\n")) })
	echo := listen(t)
	serve(echo, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		if line == "PING\r\n" {
			c.Write([]byte("+PONG\r\n"))
		}
	})
	silent := listen(t)
	serve(silent, func(c net.Conn) { c.Read(make([]byte, 1)) }) // says nothing until the client goes
	closed := listen(t)
	closedAddr := closed.Addr().String()
	closed.Close()

	cases := []struct {
		name, check, addr, err string
	}{
		{"connect", `port = 1`, echo.Addr().String(), ""},
		{"refused", `port = 1`, closedAddr, "connection refused"},
		{"banner", "port = 1\nexpect = '^\\* OK'", banner.Addr().String(), ""},
		{"wrong banner", "port = 1\nexpect = '^\\* BYE'", banner.Addr().String(), `no line matches "^\\* BYE" (last "* OK IMAP4rev1 ready")`},
		{"send and expect", "port = 1\nsend = \"PING\"\nexpect = '^\\+PONG'", echo.Addr().String(), ""},
		{"no answer", "port = 1\nexpect = 'x'\ninterval = \"1s\"\ntimeout = \"200ms\"", silent.Addr().String(), "timed out"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, parseCheck(t, "type = \"tcp\"\n"+tc.check), false, tc.addr)
			wantResult(t, r, tc.err)
		})
	}
}
