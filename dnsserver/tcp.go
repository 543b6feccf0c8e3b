package dnsserver

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// tcpConn is one client connection. mu orders the connection's deadline
// changes against Shutdown's wake-up, so that a connection either sees the
// shutdown before arming its next read or has that read cut short.
type tcpConn struct {
	conn *net.TCPConn
	s    *Server
	mu   sync.Mutex
}

// wake cuts the connection's current (or next) read short.
func (c *tcpConn) wake() {
	c.mu.Lock()
	_ = c.conn.SetReadDeadline(time.Now())
	c.mu.Unlock()
}

// arm sets the read deadline unless the server is shutting down.
func (c *tcpConn) arm(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.s.closing.Load() {
		return false
	}
	return c.conn.SetReadDeadline(t) == nil
}

func (s *Server) serveTCP(l *net.TCPListener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		conn, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.closing.Load() {
				return
			}
			// Out of file descriptors and the like: back off, as
			// net/http does, and keep accepting.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("dns tcp accept", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if s.tcpConns.Add(1) > int64(s.opts.TCPMaxConnections) {
			s.tcpConns.Add(-1)
			s.tcpRejected.Add(1)
			_ = conn.SetLinger(0)
			conn.Close()
			continue
		}
		c := &tcpConn{conn: conn, s: s}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			s.tcpConns.Add(-1)
			conn.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers the queries of one connection in order. Pipelined
// queries are read from one buffer and their replies flushed together.
// Limits: the idle timeout for the next query to start, ioTimeout for the
// rest of it to arrive (slowloris), the idle timeout for a write.
func (s *Server) serveConn(c *tcpConn) {
	w := s.h.newWorker(protoTCP, nil, s.tcpCtr)
	var peer netip.Addr
	if a, ok := c.conn.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr().Unmap()
	}
	br := bufio.NewReaderSize(c.conn, 2048)
	bw := bufio.NewWriterSize(c.conn, 2048)
	defer func() {
		if bw.Buffered() > 0 { // answers to pipelined queries read before a shutdown
			_ = c.conn.SetWriteDeadline(time.Now().Add(s.ioTimeout))
			_ = bw.Flush()
		}
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.conn.Close()
		s.tcpConns.Add(-1)
		s.wg.Done()
	}()
	msg := make([]byte, 512)
	out := make([]byte, 2, 514)
	var lb [2]byte
	for {
		if !c.arm(time.Now().Add(s.opts.TCPIdleTimeout)) {
			return
		}
		if _, err := io.ReadFull(br, lb[:1]); err != nil {
			return
		}
		if !c.arm(time.Now().Add(s.ioTimeout)) {
			return
		}
		if _, err := io.ReadFull(br, lb[1:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if n == 0 {
			return
		}
		if n > len(msg) {
			msg = make([]byte, n)
		}
		if _, err := io.ReadFull(br, msg[:n]); err != nil {
			return
		}
		t0 := time.Now()
		out = w.respondFrom(out[:2], msg[:n], peer)
		if len(out) > 2 {
			binary.BigEndian.PutUint16(out, uint16(len(out)-2))
			if _, err := bw.Write(out); err != nil {
				return
			}
		}
		for _, m := range w.xfr { // the rest of a zone transfer
			binary.BigEndian.PutUint16(lb[:], uint16(len(m)))
			_ = c.conn.SetWriteDeadline(time.Now().Add(s.opts.TCPIdleTimeout))
			if _, err := bw.Write(lb[:]); err != nil {
				return
			}
			if _, err := bw.Write(m); err != nil {
				return
			}
		}
		w.xfr = nil
		w.ctr.observe(time.Since(t0), 1)
		if br.Buffered() == 0 && bw.Buffered() > 0 {
			_ = c.conn.SetWriteDeadline(time.Now().Add(s.opts.TCPIdleTimeout))
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}
