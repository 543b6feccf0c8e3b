//go:build unix

package dnsserver

import (
	"net/netip"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// control runs on each socket before bind: SO_REUSEPORT so that several
// sockets share one address and the kernel spreads datagrams over them,
// and for UDP on a wildcard address the request for each datagram's
// destination address (see pktinfo).
func control(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		if serr != nil || !strings.HasPrefix(network, "udp") {
			return
		}
		if ap, err := netip.ParseAddrPort(address); err == nil && ap.Addr().IsUnspecified() {
			serr = pktinfo(network, int(fd))
		}
	})
	if err != nil {
		return err
	}
	return serr
}
