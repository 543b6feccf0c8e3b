//go:build linux

package dnsserver

import (
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is the number of datagrams per recvmmsg/sendmmsg call.
const batchSize = 32

// ctlSize holds one IP_PKTINFO or IPV6_PKTINFO control message.
const ctlSize = 64

// batchReader serves one UDP socket with recvmmsg and sendmmsg through the
// runtime poller (syscall.RawConn), over arrays allocated once: no
// allocation per packet or per batch.
type batchReader struct {
	s  *Server
	c  *net.UDPConn
	rc syscall.RawConn
	w  *worker
	st *steer // nil: the socket's group is not steered

	outSize int
	in      []byte // batchSize * udpInSize
	out     []byte // batchSize * outSize
	names   []unix.RawSockaddrInet6
	rhdr    []unix.Mmsghdr
	whdr    []unix.Mmsghdr
	riov    []unix.Iovec
	wiov    []unix.Iovec

	// pktinfo: the socket is bound to a wildcard address, so each reply
	// is sent from the address its query came to (IP_PKTINFO or
	// IPV6_PKTINFO, as NSD does), not from the one routing would pick.
	pktinfo bool
	v4      bool
	ctl     []byte // batchSize * ctlSize

	// results of the last system call, set by the callbacks
	n     int
	errno syscall.Errno
	from  int // first whdr to send
	count int // whdrs to send

	readFn, writeFn func(uintptr) bool
}

func newBatchReader(s *Server, c *net.UDPConn, st *steer, w *worker) *batchReader {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	b := &batchReader{
		s: s, c: c, rc: rc, w: w, st: st,
		outSize: s.opts.UDPSize,
		in:      make([]byte, batchSize*udpInSize),
		out:     make([]byte, batchSize*s.opts.UDPSize),
		names:   make([]unix.RawSockaddrInet6, batchSize),
		rhdr:    make([]unix.Mmsghdr, batchSize),
		whdr:    make([]unix.Mmsghdr, batchSize),
		riov:    make([]unix.Iovec, batchSize),
		wiov:    make([]unix.Iovec, batchSize),
	}
	if a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); a.IsUnspecified() {
		// IP_PKTINFO / IPV6_RECVPKTINFO were set before bind (pktinfo).
		b.v4 = a.Unmap().Is4() // net reports 0.0.0.0 as ::ffff:0.0.0.0
		b.pktinfo = true
		b.ctl = make([]byte, batchSize*ctlSize)
	}
	for i := range b.rhdr {
		if b.pktinfo {
			b.rhdr[i].Hdr.Control = &b.ctl[i*ctlSize]
			b.rhdr[i].Hdr.SetControllen(ctlSize)
		}
		b.riov[i].Base = &b.in[i*udpInSize]
		b.riov[i].SetLen(udpInSize)
		h := &b.rhdr[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &b.riov[i]
		h.SetIovlen(1)
		b.whdr[i].Hdr.Iov = &b.wiov[i]
		b.whdr[i].Hdr.SetIovlen(1)
	}
	b.readFn = b.recv
	b.writeFn = b.send
	return b
}

// recv and send make non-blocking (MSG_DONTWAIT) system calls with
// RawSyscall6, without telling the scheduler: they never block, and a
// sendmmsg of a full batch takes tens of microseconds of kernel time, long
// enough for sysmon to retake the P of a goroutine "in a system call"
// (after 20 µs) and hand it to another thread, so that every batch cost a
// P handoff, a wake-up and a slow exitsyscall. With RawSyscall6 the
// goroutine keeps its P: under dnsperf on 2 shared cores this doubled the
// queries/s (about 170k -> 340k, same binary otherwise) and lowered the CPU
// used. When the socket is empty (EAGAIN) the goroutine parks on the
// runtime poller as before.
func (b *batchReader) recv(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdr[0])), uintptr(len(b.rhdr)), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	b.n, b.errno = int(n), e
	if e != 0 {
		b.n = 0
	}
	return true
}

func (b *batchReader) send(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.whdr[b.from])), uintptr(b.count), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	b.n, b.errno = int(n), e
	return true
}

func (b *batchReader) run() {
	w := b.w
	for {
		if err := b.rc.Read(b.readFn); err != nil {
			if stopped(err) || b.s.closing.Load() {
				return
			}
			continue
		}
		if b.errno != 0 {
			if b.s.closing.Load() {
				return
			}
			continue
		}
		t0 := time.Now()
		n := b.n
		k := 0
		for i := range n {
			rh := &b.rhdr[i]
			if rh.Hdr.Flags&unix.MSG_TRUNC != 0 {
				w.ctr.malformed.Add(1)
				continue
			}
			req := b.in[i*udpInSize : i*udpInSize+int(rh.Len)]
			o := i * b.outSize
			reply := w.respondUDP(b.out[o:o:o+b.outSize], req, b.peer(i))
			if len(reply) == 0 {
				continue
			}
			wh := &b.whdr[k]
			wh.Hdr.Name = rh.Hdr.Name
			wh.Hdr.Namelen = rh.Hdr.Namelen
			wh.Hdr.Control, wh.Hdr.Controllen = nil, 0
			if b.pktinfo {
				b.sourceFrom(wh, rh, i)
			}
			b.wiov[k].Base = &reply[0]
			b.wiov[k].SetLen(len(reply))
			k++
		}
		b.flush(k)
		w.ctr.observe(time.Since(t0), n)
		if b.st != nil {
			b.st.batch(n, t0)
		}
		for i := range n { // ready the headers for the next batch
			b.rhdr[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			b.rhdr[i].Hdr.Flags = 0
			if b.pktinfo {
				b.rhdr[i].Hdr.SetControllen(ctlSize)
			}
		}
	}
}

// peer returns the source address of datagram i of the batch.
func (b *batchReader) peer(i int) netip.Addr {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		return netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// sourceFrom passes the query's destination address back as the reply's
// source: the received control message is reused in place (IPv4: the
// interface index is cleared so that routing picks the way out).
func (b *batchReader) sourceFrom(wh, rh *unix.Mmsghdr, i int) {
	ctl := b.ctl[i*ctlSize : (i+1)*ctlSize]
	if int(rh.Hdr.Controllen) < unix.CmsgLen(0) {
		return
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	data := unix.CmsgLen(0)
	switch {
	case b.v4 && h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && data+unix.SizeofInet4Pktinfo <= ctlSize:
		(*unix.Inet4Pktinfo)(unsafe.Pointer(&ctl[data])).Ifindex = 0
	case !b.v4 && h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && data+unix.SizeofInet6Pktinfo <= ctlSize:
	default:
		return
	}
	wh.Hdr.Control = &ctl[0]
	wh.Hdr.Controllen = rh.Hdr.Controllen
}

// flush sends whdr[:k]. A message the kernel refuses (an unroutable or
// port-0 source, a firewall) is skipped. A reply too big for the way out
// (EMSGSIZE: the sockets send with DF, see dontFragment) is sent again
// truncated to its header, question and OPT with TC set, so that the
// client asks again over TCP (a signed reply loses its TSIG there).
//
// Reads and writes go through syscall.RawConn. Readers blocked in recvmmsg
// (as gdnsd's threads are) were measured with bench/udpfloor: where the
// server and its clients share the cores they cost 1.7 times the CPU per
// query of the poller (each datagram wakes a thread, where the poller runs
// every reader's goroutine on the threads it has); only with a core to
// itself does the server use less with them (7 %).
func (b *batchReader) flush(k int) {
	for from := 0; from < k; {
		b.from, b.count = from, k-from
		if err := b.rc.Write(b.writeFn); err != nil {
			return
		}
		if b.errno == unix.EMSGSIZE && b.truncate(from) {
			continue
		}
		if b.errno != 0 || b.n <= 0 {
			from++
			continue
		}
		from += b.n
	}
}

// truncate cuts reply i of the batch to its header, question and OPT with
// TC set (truncateKeepOPT). It reports false when the reply has nothing left
// to cut.
func (b *batchReader) truncate(i int) bool {
	iov := &b.wiov[i]
	reply := unsafe.Slice(iov.Base, iov.Len)
	t, counted := truncateKeepOPT(reply) // built with TC: counted then
	if len(t) == len(reply) {
		return false
	}
	iov.SetLen(len(t))
	if !counted {
		b.w.ctr.truncated.Add(1)
	}
	return true
}

// dontFragment makes the socket send every reply with DF and never in
// fragments (RFC 9715 §3.1: UDP responders should avoid IP fragmentation).
// It is best effort: where the kernel refuses it (a sandbox), the server
// warns once and serves with the kernel's default.
// IP_PMTUDISC_PROBE and IPV6_PMTUDISC_PROBE send with DF at the
// interface's MTU and ignore path MTU updates, so a forged ICMP
// "fragmentation needed" cannot shrink or fragment our replies;
// IPV6_DONTFRAG refuses to fragment IPv6 at the source. Replies are fitted
// to the interface's MTU (payloadCap); one still too big (the MTU dropped
// since) fails with EMSGSIZE, and the reader sends it truncated instead
// (flush, serveUDPSimple). The kernel's default (IP_PMTUDISC_WANT)
// also sets DF on what fits, but fragments the rest and follows ICMP; gdnsd
// sets IP_PMTUDISC_OMIT (fragments allowed, no DF). With DF the kernel
// also leaves the IPv4 ID at 0 instead of drawing it for each datagram
// from its shared hashed counter (__ip_select_ident); side by side under
// dnsperf the CPU per query moved by less than the machine's noise.
func dontFragment(network string, fd int) error {
	if network == "udp4" {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
}

// pktinfo asks for the destination address of every datagram on a socket
// bound to a wildcard address. It runs before bind, so that no datagram
// arrives without it.
func pktinfo(network string, fd int) error {
	if network == "udp4" {
		return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
}
