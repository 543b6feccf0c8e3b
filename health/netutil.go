package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// dial connects to addr (host:port), timing name resolution and the connection
// as the phases dns and connect. Resolution is done here, not by the dialer,
// so that each step is timed and a name with several addresses is tried in order.
// connect dials t over TCP, recording the phases in res; on failure it
// returns nil and res.Err says what failed.
func connect(ctx context.Context, t Target, res *Result) net.Conn {
	conn, err := dial(ctx, "tcp", t.HostPort(), &res.Phases)
	if err != nil {
		res.Err = fmt.Errorf("connect %s: %w", t.HostPort(), err)
		return nil
	}
	return conn
}

func dial(ctx context.Context, network, addr string, phases *[]Phase) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var addrs []string
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []string{net.JoinHostPort(ip.String(), port)}
	} else {
		start := time.Now()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		*phases = append(*phases, Phase{"dns", time.Since(start)})
		if err != nil {
			return nil, deadlineErr(ctx, fmt.Errorf("resolve %s: %w", host, err))
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip.Unmap().String(), port))
		}
	}
	var d net.Dialer
	start := time.Now()
	var firstErr error
	for _, a := range addrs {
		c, err := d.DialContext(ctx, network, a)
		if err == nil {
			*phases = append(*phases, Phase{"connect", time.Since(start)})
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, deadlineErr(ctx, firstErr)
}

// watch makes blocking I/O on c return when ctx is done (deadline or
// cancellation). Call the returned function when done with c.
func watch(ctx context.Context, c net.Conn) func() bool {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
}

// deadlineErr says "timed out" rather than "i/o timeout" or "context deadline
// exceeded" when the probe's deadline is what ended it.
func deadlineErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	// Connection deadlines are set from ctx: a deadline error is ctx's, even
	// when it comes a moment before ctx reports it.
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
	if timedOut && !strings.HasPrefix(err.Error(), "timed out") {
		return fmt.Errorf("timed out: %w", err)
	}
	return err
}

// tlsConfig is the client TLS configuration of a check: verification on
// unless insecure, the check's CA instead of the system roots, a client
// certificate.
func tlsConfig(c *config.Check) (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: c.Insecure, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.CAFile)
		}
		conf.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// serverName is the name a TLS handshake verifies: server_name, else host
// (without a port), else the probed host (an IP address is then verified
// against the certificate's IP addresses).
func serverName(c *config.Check, t Target) string {
	if c.ServerName != "" {
		return c.ServerName
	}
	if c.Host != "" {
		if h, _, err := net.SplitHostPort(c.Host); err == nil {
			return h
		}
		return c.Host
	}
	return t.Host
}

// checkExpiry fails when a certificate of the chain expires within minValid
// and warns when it expires within warnValid (0 turns either off).
func checkExpiry(cs tls.ConnectionState, now time.Time, minValid, warnValid time.Duration) (warning string, err error) {
	var first *x509.Certificate
	for _, c := range cs.PeerCertificates {
		if first == nil || c.NotAfter.Before(first.NotAfter) {
			first = c
		}
	}
	if first == nil {
		return "", nil
	}
	left := first.NotAfter.Sub(now)
	what := fmt.Sprintf("certificate %q expires %s (%s)", first.Subject.CommonName, inWords(left), first.NotAfter.UTC().Format(time.RFC3339))
	if left <= 0 {
		what = fmt.Sprintf("certificate %q expired %s ago (%s)", first.Subject.CommonName, roundDur(-left), first.NotAfter.UTC().Format(time.RFC3339))
	}
	if minValid > 0 && left < minValid {
		return "", fmt.Errorf("%s, within min_validity %s", what, roundDur(minValid))
	}
	if warnValid > 0 && left < warnValid {
		return what, nil
	}
	return "", nil
}

func inWords(d time.Duration) string {
	if d <= 0 {
		return "now"
	}
	return "in " + roundDur(d)
}

func roundDur(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	return d.Round(time.Second).String()
}

// firstLine is the first non-empty line of b, trimmed and capped.
func firstLine(b []byte) string {
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			return clip(l, 200)
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// cappedBuffer keeps the first max bytes written to it and discards the rest.
type cappedBuffer struct {
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

var _ io.Writer = (*cappedBuffer)(nil)
