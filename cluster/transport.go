package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// The first byte a dialer writes after the TLS handshake says which
// protocol follows on the connection.
const (
	protoRaft    byte = 'R' // raft's NetworkTransport
	protoForward byte = 'F' // HTTP/1.1: writes forwarded to the leader
)

// handshakeTimeout bounds the TLS handshake and the protocol byte.
const handshakeTimeout = 10 * time.Second

// roster is the current member list, read by the TLS checks and the
// dialers; it changes with SetMembers.
type roster struct {
	v atomic.Pointer[[]Member]
}

func (r *roster) set(ms []Member) { c := slices.Clone(ms); r.v.Store(&c) }
func (r *roster) get() []Member   { return *r.v.Load() }

func (r *roster) byID(id string) (Member, bool) {
	for _, m := range r.get() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

func (r *roster) byAddr(a string) (Member, bool) {
	for _, m := range r.get() {
		if m.Raft.String() == a {
			return m, true
		}
	}
	return Member{}, false
}

// tlsConfigs loads the CA, certificate and key and returns the server and
// client configurations: TLS 1.3 only; the server requires a client
// certificate from the CA naming a listed member in a DNS SAN; the client
// checks the server's certificate against the CA and the member id it
// meant to reach (its ServerName).
func tlsConfigs(f TLSFiles, self string, ros *roster, blocked func(string) bool) (server, client *tls.Config, err error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("cluster ca %s: no PEM certificate", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster certificate %s, key %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, nil, fmt.Errorf("cluster certificate %s: %w", f.Cert, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: self, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, nil, fmt.Errorf("cluster certificate %s: not valid for node %q under ca %s: %w", f.Cert, self, f.CA, err)
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			id, ok := peerID(cs.PeerCertificates[0], ros)
			if !ok {
				return fmt.Errorf("client certificate names no member (dns names %v)", cs.PeerCertificates[0].DNSNames)
			}
			if blocked != nil && blocked(id) {
				return fmt.Errorf("peer %s is cut off (test partition)", id)
			}
			return nil
		},
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
	}
	return server, client, nil
}

// peerID returns the first DNS SAN of c that names a member.
func peerID(c *x509.Certificate, ros *roster) (string, bool) {
	for _, n := range c.DNSNames {
		if _, ok := ros.byID(n); ok {
			return n, true
		}
	}
	return "", false
}

// mux accepts TLS connections on one listener and hands each to raft or to
// the forwarding server by the first byte after the handshake. It also
// dials peers (by member id), and can cut peers off for tests.
type mux struct {
	ln        net.Listener
	server    *tls.Config
	client    *tls.Config
	ros       *roster
	raftConns chan net.Conn
	fwdConns  chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	log       func(msg string, args ...any)

	// ctx ends every dial and handshake under way when the node shuts
	// down (raft's shutdown waits for its dialing goroutines).
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	conns   map[net.Conn]string // open connections by peer id
	blocked map[string]bool     // peers cut off (tests)
	wg      sync.WaitGroup
}

func newMux(ln net.Listener, ros *roster, logf func(string, ...any)) *mux {
	ctx, cancel := context.WithCancel(context.Background())
	return &mux{
		ln: ln, ros: ros, log: logf, ctx: ctx, cancel: cancel,
		raftConns: make(chan net.Conn), fwdConns: make(chan net.Conn),
		done: make(chan struct{}), conns: map[net.Conn]string{}, blocked: map[string]bool{},
	}
}

func (m *mux) isBlocked(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked[id]
}

// setBlocked cuts this node off from (or reconnects it to) the given
// peers: dials to them fail, their handshakes are refused, and open
// connections with them are closed. For tests that partition a cluster.
func (m *mux) setBlocked(ids []string, block bool) {
	m.mu.Lock()
	var kill []net.Conn
	for _, id := range ids {
		if block {
			m.blocked[id] = true
		} else {
			delete(m.blocked, id)
		}
	}
	for c, id := range m.conns {
		if m.blocked[id] {
			kill = append(kill, c)
		}
	}
	m.mu.Unlock()
	for _, c := range kill {
		c.Close()
	}
}

func (m *mux) track(c net.Conn, id string) net.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.conns[c] = id
	return &trackedConn{Conn: c, m: m}
}

type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.m.mu.Lock()
		delete(t.m.conns, t.Conn)
		t.m.mu.Unlock()
	})
	return t.Conn.Close()
}

// serve accepts connections until the listener closes.
func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log("cluster listener stopped", "err", err)
			return
		}
		if m.ctx.Err() != nil {
			c.Close()
			continue
		}
		m.wg.Add(1)
		go m.handshake(c)
	}
}

// handshake completes TLS, reads the protocol byte and hands the
// connection over; anything else closes it.
func (m *mux) handshake(raw net.Conn) {
	defer m.wg.Done()
	// abort closes the connection until it is handed over (or refused).
	defer context.AfterFunc(m.ctx, func() { raw.Close() })()
	c := tls.Server(raw, m.server)
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := c.HandshakeContext(m.ctx); err != nil {
		m.log("cluster connection refused", "remote", raw.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	id, _ := peerID(c.ConnectionState().PeerCertificates[0], m.ros)
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	tc := m.track(c, id)
	var ch chan net.Conn
	switch b[0] {
	case protoRaft:
		ch = m.raftConns
	case protoForward:
		ch = m.fwdConns
	default:
		m.log("cluster connection with unknown protocol byte", "peer", id, "byte", b[0])
		tc.Close()
		return
	}
	select {
	case ch <- tc:
	case <-m.done:
		tc.Close()
	}
}

// dial connects to member id over mutual TLS and writes the protocol byte.
func (m *mux) dial(ctx context.Context, id string, proto byte) (net.Conn, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.ctx, cancel)()
	if m.isBlocked(id) {
		return nil, fmt.Errorf("dial %s: cut off (test partition)", id)
	}
	mem, ok := m.ros.byID(id)
	if !ok {
		return nil, fmt.Errorf("dial %s: not a member", id)
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", mem.Raft.String())
	if err != nil {
		return nil, err
	}
	conf := m.client.Clone()
	conf.ServerName = id
	c := tls.Client(raw, conf)
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(handshakeTimeout)
	}
	c.SetDeadline(dl)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("dial %s at %s: %w", id, mem.Raft, err)
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return m.track(c, id), nil
}

// abort ends the dials and handshakes under way, and refuses new ones.
func (m *mux) abort() { m.cancel() }

func (m *mux) close() {
	m.abort()
	m.closeOnce.Do(func() {
		close(m.done)
		m.ln.Close()
	})
	m.mu.Lock()
	var all []net.Conn
	for c := range m.conns {
		all = append(all, c)
	}
	m.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
	m.wg.Wait()
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	ch     chan net.Conn
	addr   net.Addr
	done   chan struct{}
	closed sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// streamLayer is raft's StreamLayer over the mux.
type streamLayer struct {
	chanListener
	m *mux
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// Dial connects to the member whose raft address is address; an address
// that is no member's is refused (the certificate check needs its id).
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	mem, ok := s.m.ros.byAddr(string(address))
	if !ok {
		return nil, fmt.Errorf("dial %s: no member has this raft address", address)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.m.dial(ctx, mem.ID, protoRaft)
}
