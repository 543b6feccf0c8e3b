package health

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// newTLS completes a TLS handshake against a name (server_name, host, or the
// probed host) and checks how long the certificate has left.
func newTLS(c *config.Check) (ProbeFunc, error) {
	base, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, t Target) Result {
		var res Result
		conn := connect(ctx, t, &res)
		if conn == nil {
			return res
		}
		defer conn.Close()
		conf := base.Clone()
		conf.ServerName = serverName(c, t)
		tc := tls.Client(conn, conf)
		start := time.Now()
		err = tc.HandshakeContext(ctx)
		res.Phases = append(res.Phases, Phase{"tls", time.Since(start)})
		if err != nil {
			res.Err = fmt.Errorf("%s: tls handshake as %q: %w", t.HostPort(), conf.ServerName, deadlineErr(ctx, err))
			return res
		}
		cs := tc.ConnectionState()
		res.Warning, res.Err = checkExpiry(cs, time.Now(), c.MinValidity.Duration, c.WarnValidity.Duration)
		if res.Err != nil {
			res.Err = fmt.Errorf("%s: %w", t.HostPort(), res.Err)
		}
		if len(cs.PeerCertificates) > 0 {
			res.Detail = fmt.Sprintf("%s, certificate valid until %s", tls.VersionName(cs.Version),
				cs.PeerCertificates[0].NotAfter.UTC().Format(time.DateOnly))
		}
		return res
	}, nil
}
