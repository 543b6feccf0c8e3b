// Package dnsserver is the socket side of the nameserver: it receives DNS
// messages over UDP and TCP, checks and parses them by hand, answers from a
// per-goroutine cache of packed replies or from the current zones snapshot,
// and builds the message envelope (header, EDNS, NSID, CHAOS, truncation).
// What the answer is belongs to package zones.
//
// Service names are answered per client route: the client is the EDNS
// Client Subnet (RFC 7871) when the query carries a public one, else the
// source address; the reply to such a query echoes the option with SCOPE
// PREFIX-LENGTH = the prefix that decided the route, capped by the source
// prefix: the widest prefix around the client whose addresses all get the
// same route (geo.Table, as gdnsd merges networks; at most the database
// network's prefix), 0 when the answer is the same for everyone or the
// subnet was not used. A malformed ECS option is FORMERR. Answers
// are cached packed per (snapshot, qname, qtype, class, EDNS flags, size
// limit, routes); a hit patches ID, flags, qname case and the ECS option.
package dnsserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/zones"
)

// Source gives the current zones snapshot; zones.Store is one.
type Source interface{ Snapshot() *zones.Snapshot }

// Options configures a Server. The zero value works (it serves nothing
// until Listen is set, and REFUSES everything without a Source).
type Options struct {
	Listen            []netip.AddrPort // each gets UDP and TCP
	SocketsPerAddress int              // SO_REUSEPORT UDP sockets (and reader goroutines) per address; 0 = runtime.NumCPU()
	UDPSize           int              // our EDNS payload size, default 1232
	TCPIdleTimeout    time.Duration    // default 10s
	TCPMaxConnections int              // default 1000
	NSID              string           // "" = no NSID option
	Identity          string           // answer for CHAOS TXT id.server. and hostname.bind. ("" = REFUSED)
	VersionBind       string           // answer for CHAOS TXT version.bind./version.server.; "" = REFUSED
	Source            Source
	// TransferAllow lists the client addresses that may transfer any of
	// our zones over TCP (AXFR, and IXFR answered in full); nil: none, every
	// transfer is REFUSED (with EDE 18 Prohibited), as NSD does.
	TransferAllow []netip.Prefix
	// TSIGKeys are the keys queries may be signed with (RFC 8945); a signed
	// query is answered signed. When keys are given, a transfer must also
	// be signed with one of them. A query signed with another key gets
	// NOTAUTH with BADKEY.
	TSIGKeys []TSIGKey
	// RRL is response rate limiting for UDP (see RRL); zero: off.
	RRL RRL
	// Notify lists the secondaries sent a NOTIFY (RFC 1996) when a zone's
	// serial changes; nil (the default): no NOTIFY, nothing is sent.
	Notify []netip.AddrPort
	// NotifyInterval is how often the snapshot is looked at for changed
	// serials (default 1s).
	NotifyInterval time.Duration
	Logger         *slog.Logger         // nil = discard
	Registry       *prometheus.Registry // nil = private
}

const (
	defaultUDPSize     = 1232
	defaultIdle        = 10 * time.Second
	defaultMaxConns    = 1000
	tcpMaxReadDuration = 2 * time.Second
	udpReadBuffer      = 4 << 20
)

// Server serves DNS on the Options.Listen addresses.
type Server struct {
	opts Options
	h    *handler
	log  *slog.Logger
	coll *collector

	tcpCtr      *counters
	tcpConns    atomic.Int64
	tcpRejected atomic.Uint64
	ioTimeout   time.Duration

	closing atomic.Bool
	// dfWarned: the warning that a socket refused dontFragment was logged
	// (once per server; sockets are bound by Start alone).
	dfWarned bool
	done     chan struct{}

	mu       sync.Mutex
	started  bool
	udp      []*net.UDPConn
	lns      []*net.TCPListener
	udpAddrs []net.Addr
	tcpAddrs []net.Addr
	conns    map[*tcpConn]struct{}
	wg       sync.WaitGroup

	// simpleUDP forces the portable one-packet-per-syscall UDP loop (tests).
	simpleUDP bool
	// attachHook replaces the attaching of a steering program (tests).
	attachHook func(k int) error
}

// New checks o, fills in defaults and registers the metrics.
func New(o Options) (*Server, error) {
	if o.SocketsPerAddress < 0 {
		return nil, fmt.Errorf("dns server: sockets per address %d: must not be negative", o.SocketsPerAddress)
	}
	if o.SocketsPerAddress == 0 {
		o.SocketsPerAddress = runtime.NumCPU()
	}
	if o.UDPSize == 0 {
		o.UDPSize = defaultUDPSize
	}
	if o.UDPSize < config.MinUDPSize || o.UDPSize > config.MaxUDPSize {
		return nil, fmt.Errorf("dns server: udp size %d: must be in %d..%d", o.UDPSize, config.MinUDPSize, config.MaxUDPSize)
	}
	if o.TCPIdleTimeout < 0 {
		return nil, fmt.Errorf("dns server: tcp idle timeout %v: must not be negative", o.TCPIdleTimeout)
	}
	if o.TCPIdleTimeout == 0 {
		o.TCPIdleTimeout = defaultIdle
	}
	if o.TCPMaxConnections < 0 {
		return nil, fmt.Errorf("dns server: tcp max connections %d: must not be negative", o.TCPMaxConnections)
	}
	if o.TCPMaxConnections == 0 {
		o.TCPMaxConnections = defaultMaxConns
	}
	if len(o.NSID) > config.MaxNSID {
		return nil, fmt.Errorf("dns server: nsid is %d bytes: at most %d", len(o.NSID), config.MaxNSID)
	}
	if len(o.Identity) > config.MaxTXT || len(o.VersionBind) > config.MaxTXT {
		return nil, fmt.Errorf("dns server: identity and version must be at most %d bytes", config.MaxTXT)
	}
	for _, ap := range o.Listen {
		if !ap.IsValid() {
			return nil, fmt.Errorf("dns server: listen address %v: invalid", ap)
		}
	}
	if o.NotifyInterval < 0 {
		return nil, fmt.Errorf("dns server: notify interval %v: must not be negative", o.NotifyInterval)
	}
	if o.NotifyInterval == 0 {
		o.NotifyInterval = defaultNotifyInterval
	}
	for _, ap := range o.Notify {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("dns server: notify address %v: invalid", ap)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Server{
		opts:      o,
		log:       o.Logger,
		done:      make(chan struct{}),
		conns:     map[*tcpConn]struct{}{},
		ioTimeout: min(o.TCPIdleTimeout, tcpMaxReadDuration),
	}
	s.h = &handler{
		src:      o.Source,
		udpSize:  o.UDPSize,
		zones:    newZoneNames(),
		log:      o.Logger,
		xfrAllow: o.TransferAllow,
		keys:     map[string]TSIGKey{},
		rrl:      newRRL(o.RRL),
	}
	for _, k := range o.TSIGKeys {
		if !validHMAC(k.Algorithm) {
			return nil, fmt.Errorf("dns server: tsig key %s: unknown algorithm %q", k.Name, k.Algorithm)
		}
		if _, err := base64.StdEncoding.DecodeString(k.Secret); err != nil || k.Secret == "" {
			return nil, fmt.Errorf("dns server: tsig key %s: secret is not base64", k.Name)
		}
		s.h.keys[strings.ToLower(dns.Fqdn(k.Name))] = k
	}
	if o.NSID != "" {
		s.h.nsid = []byte(o.NSID)
	}
	if o.Identity != "" {
		s.h.identity = txtEscape(o.Identity)
	}
	if o.VersionBind != "" {
		s.h.version = txtEscape(o.VersionBind)
	}
	s.coll = newCollector(s.h.zones, &s.tcpConns, &s.tcpRejected)
	s.coll.replyErrs = &s.h.replyErrs
	s.coll.rrl = s.h.rrl
	s.tcpCtr = &counters{proto: protoTCP}
	s.coll.add(s.tcpCtr)
	if err := o.Registry.Register(s.coll); err != nil {
		return nil, fmt.Errorf("dns server: register metrics: %w", err)
	}
	return s, nil
}

// newUDPWorker returns a worker with its own cache and counters.
func (s *Server) newUDPWorker() *worker {
	ctr := &counters{proto: protoUDP}
	s.coll.add(ctr)
	return s.h.newWorker(protoUDP, newCache(defaultCacheEntries, defaultCacheBytes), ctr)
}

// Start binds every socket and starts serving. On a bind error it closes
// what it opened and returns the error.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("dns server: already started")
	}
	if s.closing.Load() {
		return errors.New("dns server: shut down")
	}
	var udp []*net.UDPConn
	var lns []*net.TCPListener
	var udpAddrs, tcpAddrs []net.Addr
	closeAll := func() {
		for _, c := range udp {
			c.Close()
		}
		for _, l := range lns {
			l.Close()
		}
	}
	// a UDP socket's reader: its group's steering (nil: none) and its
	// worker's udpRoom, both per address
	type reader struct {
		st      *steer
		udpRoom int
	}
	var steers []*steer
	readers := map[*net.UDPConn]reader{}
	for _, ap := range s.opts.Listen {
		u, l, err := s.bind(ap)
		if err != nil {
			closeAll()
			return err
		}
		st, err := newSteer(s, u)
		if err != nil { // serve without: the kernel's hash spreads the datagrams
			s.log.Warn("dns server: no socket steering", "err", err)
		}
		r := reader{st: st, udpRoom: s.h.udpSize}
		if pc := payloadCap(u[0].LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()); pc > 0 {
			r.udpRoom = max(min(r.udpRoom, pc), minUDPLimit)
		}
		for _, c := range u {
			readers[c] = r
		}
		if st == nil {
			st = unsteered(u)
		}
		steers = append(steers, st)
		udp = append(udp, u...)
		lns = append(lns, l)
		udpAddrs = append(udpAddrs, u[0].LocalAddr())
		tcpAddrs = append(tcpAddrs, l.Addr())
	}
	s.started = true
	s.udp, s.lns, s.udpAddrs, s.tcpAddrs = udp, lns, udpAddrs, tcpAddrs
	s.coll.setSteers(steers)
	for _, c := range udp {
		w := s.newUDPWorker()
		w.udpRoom = readers[c].udpRoom
		s.wg.Add(1)
		go s.serveUDP(c, readers[c].st, w)
	}
	for _, l := range lns {
		s.wg.Add(1)
		go s.serveTCP(l)
	}
	if len(s.opts.Notify) > 0 && s.h.src != nil {
		s.wg.Add(1)
		go s.runNotify(s.h.src.Snapshot())
	}
	s.log.Info("dns server started", "udp", fmt.Sprint(udpAddrs), "tcp", fmt.Sprint(tcpAddrs), "sockets_per_address", s.opts.SocketsPerAddress)
	return nil
}

// bind opens the UDP sockets and the TCP listener of one address. Port 0
// picks a port free for both; the choice is retried a few times.
func (s *Server) bind(ap netip.AddrPort) ([]*net.UDPConn, *net.TCPListener, error) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for attempt := 0; ; attempt++ {
		u, l, err := s.bindOnce(ap)
		if err == nil {
			return u, l, nil
		}
		if ap.Port() != 0 || attempt >= 20 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("dns server: listen %v: %w", ap, err)
		}
	}
}

func (s *Server) bindOnce(ap netip.AddrPort) (udp []*net.UDPConn, ln *net.TCPListener, err error) {
	lc := net.ListenConfig{Control: control}
	un, tn := "udp4", "tcp4"
	if ap.Addr().Is6() {
		un, tn = "udp6", "tcp6"
	}
	defer func() {
		if err != nil {
			for _, c := range udp {
				c.Close()
			}
			udp = nil
		}
	}()
	addr := ap
	for range s.opts.SocketsPerAddress {
		pc, err := lc.ListenPacket(context.Background(), un, addr.String())
		if err != nil {
			return udp, nil, err
		}
		c := pc.(*net.UDPConn)
		_ = c.SetReadBuffer(udpReadBuffer) // best effort: capped by net.core.rmem_max
		if err := setDontFragment(c, un); err != nil && !s.dfWarned {
			// best effort too: a kernel or sandbox that refuses it still serves
			s.dfWarned = true
			s.log.Warn("dns server: replies may leave in fragments", "listen", addr.String(), "err", err)
		}
		udp = append(udp, c)
		a := c.LocalAddr().(*net.UDPAddr).AddrPort()
		addr = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	l, err := lc.Listen(context.Background(), tn, addr.String())
	if err != nil {
		return udp, nil, err
	}
	return udp, l.(*net.TCPListener), nil
}

// UDPAddrs returns the bound UDP addresses, one per Listen entry.
func (s *Server) UDPAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.udpAddrs...)
}

// TCPAddrs returns the bound TCP addresses, one per Listen entry.
func (s *Server) TCPAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.tcpAddrs...)
}

// Shutdown stops accepting, lets the UDP readers finish their batch and the
// TCP connections finish the answer they are writing, closes idle
// connections and every socket, and waits for every goroutine. When ctx
// ends first, it closes the TCP connections at once, waits, and returns
// ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing.Swap(true) {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	close(s.done)
	for _, l := range s.lns {
		l.Close()
	}
	now := time.Now()
	for _, c := range s.udp {
		_ = c.SetReadDeadline(now) // the readers finish their batch and return
	}
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.conn.Close()
		}
		s.mu.Unlock()
		<-finished // UDP readers close their sockets: they are awake already
	}
	s.log.Info("dns server stopped")
	return err
}

// validHMAC reports whether alg names an HMAC algorithm miekg/dns signs with.
func validHMAC(alg string) bool {
	_, ok := macSize[strings.ToLower(dns.Fqdn(alg))]
	return ok
}
