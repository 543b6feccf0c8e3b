//go:build linux

// Command udpfloor is the floor under geodnsd's UDP path: a responder with
// geodnsd's socket options and batched I/O that does no DNS work. Every
// query gets its own header and question back with one record, NAME A
// 192.0.2.10 (TTL 300, NAME a pointer to the question), and an OPT when
// the query has an additional record: about the size of geodnsd's answer to
// www.example.com A. It parses nothing but the question's length, keeps no
// cache and counts nothing. Run beside geodnsd and gdnsd by bench/dnsperf.sh
// as server "floor" (SERVERS="geodnsd floor gdnsd"); the CPU per query it
// uses is what the I/O design costs before any answering.
//
//	udpfloor -listen 127.0.0.1:5300 [-sockets N] [-io poller|block]
//
// -io poller (the default) is geodnsd's design: recvmmsg and sendmmsg of up
// to 32 datagrams with RawSyscall6 through syscall.RawConn, parking on the
// runtime poller when the socket is empty. -io block is gdnsd's: each
// reader blocks in recvmmsg (MSG_WAITFORONE) on a blocking socket outside
// the poller and holds a P of its own (GOMAXPROCS is raised by -sockets).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	batch  = 32
	inSize = 4096
	outMax = 512
)

// tail follows the question: the A record, then (with EDNS) the OPT.
var (
	answerA = []byte{0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 10}
	opt     = []byte{0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0} // root, OPT, 1232, no flags, no options
)

type reader struct {
	in   []byte
	out  []byte
	name []unix.RawSockaddrInet6
	rh   []unix.Mmsghdr
	wh   []unix.Mmsghdr
	riov []unix.Iovec
	wiov []unix.Iovec
	n    int
	err  syscall.Errno

	from, count int                // the messages a send sends
	readFn      func(uintptr) bool // recv with MSG_DONTWAIT, made once
	writeFn     func(uintptr) bool // send, made once
}

func newReader() *reader {
	r := &reader{in: make([]byte, batch*inSize), out: make([]byte, batch*outMax), name: make([]unix.RawSockaddrInet6, batch),
		rh: make([]unix.Mmsghdr, batch), wh: make([]unix.Mmsghdr, batch), riov: make([]unix.Iovec, batch), wiov: make([]unix.Iovec, batch)}
	for i := range r.rh {
		r.riov[i].Base = &r.in[i*inSize]
		r.riov[i].SetLen(inSize)
		r.rh[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.name[i]))
		r.rh[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.rh[i].Hdr.Iov = &r.riov[i]
		r.rh[i].Hdr.SetIovlen(1)
		r.wh[i].Hdr.Iov = &r.wiov[i]
		r.wh[i].Hdr.SetIovlen(1)
	}
	r.readFn = func(fd uintptr) bool { return r.recv(fd, unix.MSG_DONTWAIT) }
	r.writeFn = r.send
	return r
}

// answer builds the n replies of the batch into whdr and returns how many.
func (r *reader) answer(n int) int {
	k := 0
	for i := range n {
		q := r.in[i*inSize : i*inSize+int(r.rh[i].Len)]
		end := 12
		for end < len(q) && q[end] != 0 && end-12 < 255 { // the question's name
			end += int(q[end]) + 1
		}
		end += 5 // root label, type, class
		if len(q) < 12 || end > len(q) || q[2]&0x80 != 0 {
			continue
		}
		o := r.out[i*outMax : i*outMax : (i+1)*outMax]
		o = append(o, q[0], q[1], 0x84|q[2]&0x01, 0, 0, 1, 0, 1, 0, 0, 0, 0)
		o = append(o, q[12:end]...)
		o = append(o, answerA...)
		if q[10]|q[11] != 0 {
			o[11] = 1
			o = append(o, opt...)
		}
		r.wh[k].Hdr.Name = r.rh[i].Hdr.Name
		r.wh[k].Hdr.Namelen = r.rh[i].Hdr.Namelen
		r.wiov[k].Base = &o[0]
		r.wiov[k].SetLen(len(o))
		k++
	}
	for i := range n {
		r.rh[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	return k
}

func (r *reader) recv(fd uintptr, flags int) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.rh[0])), batch, uintptr(flags), 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	r.n, r.err = int(n), e
	if e != 0 {
		r.n = 0
	}
	return true
}

// send sends whdr[from:from+count] and reports false when the socket is full.
func (r *reader) send(fd uintptr) bool {
	n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&r.wh[r.from])), uintptr(r.count), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	r.n, r.err = int(n), e
	return true
}

// flush sends whdr[:k], skipping a message the kernel refuses; write runs
// send through the poller (or directly), as geodnsd's flush does.
func (r *reader) flush(k int, write func(func(uintptr) bool) error) {
	for from := 0; from < k; {
		r.from, r.count = from, k-from
		if err := write(r.writeFn); err != nil {
			return
		}
		if r.err != 0 || r.n <= 0 {
			from++
			continue
		}
		from += r.n
	}
}

// control sets what geodnsd sets on its UDP sockets.
func control(fd uintptr) error {
	if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return err
	}
	if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE); err != nil {
		return err
	}
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
}

// servePoller is geodnsd's loop: a batch per RawConn.Read, its replies
// through RawConn.Write.
func servePoller(addr string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = control(fd) }); cerr != nil {
			return cerr
		}
		return err
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return err
	}
	rc, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	r := newReader()
	for {
		if err := rc.Read(r.readFn); err != nil {
			return err
		}
		r.flush(r.answer(r.n), rc.Write)
	}
}

// serveBlock is gdnsd's loop: a blocking recvmmsg on a socket the runtime
// poller does not know. SO_RCVTIMEO bounds each wait (as gdnsd sets it), so
// that a signal ends it with EINTR instead of restarting it (Go's handlers
// use SA_RESTART): a stop-the-world then waits at most that long for a
// reader with no traffic, which the runtime cannot preempt inside
// RawSyscall6.
func serveBlock(addr string) error {
	ap, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := control(uintptr(fd)); err != nil {
		return err
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000}); err != nil {
		return err
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		return err
	}
	r := newReader()
	direct := func(f func(uintptr) bool) error { f(uintptr(fd)); return nil }
	for {
		if !r.recv(uintptr(fd), unix.MSG_WAITFORONE) || r.err == unix.EINTR {
			// The wait timed out or a signal ended it: yield here, so that a
			// stop-the-world stops this goroutine at a known point rather than
			// at recv's prologue, which inlining could take away.
			runtime.Gosched()
			continue
		}
		if r.err != 0 {
			return r.err
		}
		r.flush(r.answer(r.n), direct)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5300", "IPv4 address and port to answer on")
	sockets := flag.Int("sockets", 1, "SO_REUSEPORT sockets, one reader each")
	mode := flag.String("io", "poller", "poller (geodnsd's design) or block (gdnsd's)")
	flag.Parse()
	serve := servePoller
	switch *mode {
	case "poller":
	case "block":
		serve = serveBlock
		runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + *sockets)
	default:
		fmt.Fprintf(os.Stderr, "udpfloor: -io %q: want poller or block\n", *mode)
		os.Exit(2)
	}
	if *sockets < 1 {
		fmt.Fprintln(os.Stderr, "udpfloor: -sockets: want at least 1")
		os.Exit(2)
	}
	errc := make(chan error, *sockets)
	for range *sockets {
		go func() { errc <- serve(*listen) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			fmt.Fprintln(os.Stderr, "udpfloor:", err)
			os.Exit(1)
		}
	case <-sig:
	}
}
