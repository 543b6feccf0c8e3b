package health

import (
	"context"
	"fmt"
	"net/smtp"
	"os"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// newSMTP expects a 220 banner, greets with EHLO and, with starttls, upgrades
// the connection with a verified handshake, then says QUIT.
func newSMTP(c *config.Check) (ProbeFunc, error) {
	base, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	ehlo := c.EHLO
	if ehlo == "" {
		ehlo, _ = os.Hostname()
		if ehlo == "" || strings.ContainsAny(ehlo, " \r\n") {
			ehlo = "localhost"
		}
	}
	return func(ctx context.Context, t Target) Result {
		var res Result
		conn := connect(ctx, t, &res)
		if conn == nil {
			return res
		}
		defer conn.Close()
		defer watch(ctx, conn)()
		fail := func(step string, err error) Result {
			res.Err = fmt.Errorf("%s: smtp %s: %w", t.HostPort(), step, deadlineErr(ctx, err))
			return res
		}
		start := time.Now()
		name := serverName(c, t)
		cl, err := smtp.NewClient(conn, name) // reads the banner, wants 220
		if err != nil {
			return fail("banner", err)
		}
		res.Phases = append(res.Phases, Phase{"first_byte", time.Since(start)})
		if err := cl.Hello(ehlo); err != nil {
			return fail("EHLO", err)
		}
		if c.StartTLS {
			if ok, _ := cl.Extension("STARTTLS"); !ok {
				return fail("EHLO", fmt.Errorf("STARTTLS not offered"))
			}
			conf := base.Clone()
			conf.ServerName = name
			start := time.Now()
			if err := cl.StartTLS(conf); err != nil {
				return fail("STARTTLS", err)
			}
			res.Phases = append(res.Phases, Phase{"tls", time.Since(start)})
			cs, _ := cl.TLSConnectionState()
			res.Warning, err = checkExpiry(cs, time.Now(), c.MinValidity.Duration, c.WarnValidity.Duration)
			if err != nil {
				return fail("STARTTLS", err)
			}
			res.Detail = "banner 220, STARTTLS ok"
		} else {
			res.Detail = "banner 220, EHLO ok"
		}
		_ = cl.Quit() // the server's goodbye does not change the verdict
		return res
	}, nil
}
