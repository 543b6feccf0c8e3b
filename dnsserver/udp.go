package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// udpInSize is the receive buffer per message. Queries are small; a larger
// datagram arrives truncated and is answered as whatever it parses to
// (FORMERR at worst) or, with batched I/O, dropped and counted malformed.
const udpInSize = 4096

// serveUDP runs one reader: batched system calls where the platform has
// them, one packet per call elsewhere. st is the steering of the socket's
// group (nil: none), told of every batch.
// The reader owns its socket and closes it when it returns, so that no
// system call of the reader can run on a closed (or reused) descriptor.
func (s *Server) serveUDP(c *net.UDPConn, st *steer, w *worker) {
	defer s.wg.Done()
	defer c.Close()
	if !s.simpleUDP {
		if b := newBatchReader(s, c, st, w); b != nil {
			b.run()
			return
		}
	}
	s.serveUDPSimple(c, w)
}

// serveUDPSimple is the portable loop: one read, one reply, one write.
func (s *Server) serveUDPSimple(c *net.UDPConn, w *worker) {
	in := make([]byte, udpInSize)
	out := make([]byte, 0, s.opts.UDPSize)
	for {
		n, addr, err := c.ReadFromUDPAddrPort(in)
		if s.closing.Load() || (err != nil && stopped(err)) {
			return
		}
		if err != nil {
			continue
		}
		t0 := time.Now()
		out = w.respondUDP(out[:0], in[:n], addr.Addr().Unmap())
		if len(out) > 0 {
			_, err = c.WriteToUDPAddrPort(out, addr)
			if errors.Is(err, syscall.EMSGSIZE) { // too big for the way out: TC (see dontFragment)
				if t, counted := truncateKeepOPT(out); len(t) < len(out) { // built with TC: counted then
					if _, err := c.WriteToUDPAddrPort(t, addr); err == nil && !counted {
						w.ctr.truncated.Add(1)
					}
				}
			}
		}
		w.ctr.observe(time.Since(t0), 1)
	}
}

// setDontFragment applies dontFragment to the UDP socket c of network
// ("udp4" or "udp6").
func setDontFragment(c *net.UDPConn, network string) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = dontFragment(network, int(fd)) }); err != nil {
		return err
	}
	return serr
}

// payloadCap is the largest UDP payload that leaves the interface holding
// addr whole: its MTU less the IPv4 (20) or IPv6 (40) and UDP (8) headers.
// For the unspecified address it is the smallest over the interfaces that
// are up with an address of its family, as replies may leave by any of
// them. 0 when no interface is found. Read once, when the socket is bound:
// a link whose MTU drops later is met by the EMSGSIZE fallback (flush).
func payloadCap(addr netip.Addr) int {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0
	}
	mtu := 0
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.MTU <= 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			p, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			p = p.Unmap()
			ones, _ := n.Mask.Size()
			holds := addr.IsUnspecified() && p.Is4() == addr.Is4() ||
				p.Is4() == addr.Is4() && netip.PrefixFrom(p, ones).Contains(addr)
			if holds && (mtu == 0 || ifc.MTU < mtu) {
				mtu = ifc.MTU
			}
		}
	}
	if mtu == 0 {
		return 0
	}
	if addr.Is4() {
		return mtu - 28
	}
	return mtu - 48
}

// stopped reports whether a read error means the socket is being shut down.
func stopped(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)
}

// unsteered is the group of conns when it is not steered, for the metric
// only: every socket takes datagrams (the kernel's hash spreads them).
func unsteered(conns []*net.UDPConn) *steer {
	st := &steer{addr: conns[0].LocalAddr().(*net.UDPAddr).AddrPort()}
	st.used.Store(int32(len(conns)))
	return st
}
