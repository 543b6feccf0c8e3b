//go:build !linux

package dnsserver

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// steer: no reuseport steering on this platform; the kernel's hash (where
// there is one) spreads datagrams over the sockets.
type steer struct {
	addr netip.AddrPort
	used atomic.Int32
}

func newSteer(*Server, []*net.UDPConn) (*steer, error) { return nil, nil }
