package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// httpProber probes an HTTP(S) endpoint: the request names Host (and TLS
// verifies ServerName) whatever address is connected to. It also serves the
// sync check, which tests a value of the JSON body.
type httpProber struct {
	c    *config.Check
	url  *url.URL // the check's url (site-wide), or nil
	tls  *tls.Config
	sync bool
}

func newHTTP(c *config.Check, sync bool) (ProbeFunc, error) {
	p := &httpProber{c: c, sync: sync}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return nil, err
		}
		p.url = u
	}
	conf, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	p.tls = conf
	return p.probe, nil
}

// requestURL is the URL asked for: the check's url, or scheme://host/path
// with host the check's host (else the probed address).
func (p *httpProber) requestURL(t Target) (*url.URL, error) {
	if p.url != nil {
		u := *p.url
		return &u, nil
	}
	scheme := "http"
	if p.c.Type == config.CheckHTTPS {
		scheme = "https"
	}
	host := p.c.Host
	if host == "" {
		host = t.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if config.DefaultPorts[p.c.Type] != t.Port {
			host += ":" + strconv.Itoa(t.Port)
		}
	}
	return url.Parse(scheme + "://" + host + p.c.Path)
}

func (p *httpProber) probe(ctx context.Context, t Target) Result {
	var res Result
	u, err := p.requestURL(t)
	if err != nil {
		res.Err = fmt.Errorf("bad request url: %w", err)
		return res
	}
	// The first request's host:port is connected at the probed address;
	// a followed redirect elsewhere connects where it points.
	origin := canonicalAddr(u)
	probed := t.HostPort()
	// TLS verifies the URL's host (the check's host, or the probed address),
	// unless server_name says otherwise.
	tc := p.tls.Clone()
	tc.ServerName = p.c.ServerName
	tm := &timings{}
	tr := &http.Transport{
		Proxy:                  nil,
		TLSClientConfig:        tc,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == origin {
				addr = probed
			}
			var ph []Phase
			c, err := dial(ctx, network, addr, &ph)
			tm.add(ph...)
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	redirects := 0
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !p.c.FollowRedirects {
			return http.ErrUseLastResponse
		}
		redirects++
		if redirects > 10 {
			return errors.New("more than 10 redirects")
		}
		return nil
	}

	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, tm.trace()), p.c.Method, u.String(), nil)
	if err != nil {
		res.Err = fmt.Errorf("bad request: %w", err)
		return res
	}
	for k, v := range p.c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "geodnsd-health")
	}
	where := ""
	if origin != probed {
		where = " via " + probed
	}
	fail := func(format string, args ...any) Result {
		res.Phases = tm.phases()
		res.Err = fmt.Errorf("%s %s%s: %s", p.c.Method, u.Redacted(), where, fmt.Sprintf(format, args...))
		return res
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("%v", deadlineErr(ctx, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.c.MaxBody+1))
	truncated := int64(len(body)) > p.c.MaxBody
	if truncated {
		body = body[:p.c.MaxBody]
	} else if err != nil {
		return fail("reading body: %v", deadlineErr(ctx, err))
	}
	res.Phases = tm.phases()
	if !p.statusOK(resp.StatusCode) {
		msg := fmt.Sprintf("status %d, want %s", resp.StatusCode, p.wantStatus())
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (redirect to " + clip(loc, 100) + ", not followed)"
		}
		return fail("%s", msg)
	}
	for name, re := range p.c.HeaderMatch {
		vals := resp.Header.Values(name)
		matched := false
		for _, v := range vals {
			matched = matched || re.MatchString(v)
		}
		switch {
		case len(vals) == 0:
			return fail("no %s header", name)
		case !matched:
			return fail("header %s: %q does not match %q", name, clip(vals[0], 100), re.String())
		}
	}
	if p.c.BodyRegexp.Set() && !p.c.BodyRegexp.Match(body) {
		return fail("body does not match %q (first %d bytes read)", p.c.BodyRegexp.String(), len(body))
	}
	if resp.TLS != nil {
		warn, err := checkExpiry(*resp.TLS, time.Now(), p.c.MinValidity.Duration, p.c.WarnValidity.Duration)
		if err != nil {
			return fail("%v", err)
		}
		res.Warning = warn
	}
	if p.sync {
		if truncated {
			return fail("JSON body larger than max_body (%d bytes)", p.c.MaxBody)
		}
		detail, err := compareJSON(bytes.NewReader(body), p.c)
		if err != nil {
			return fail("%v", err)
		}
		res.Detail = detail
		return res
	}
	res.Detail = fmt.Sprintf("status %d", resp.StatusCode)
	return res
}

func (p *httpProber) statusOK(code int) bool {
	if len(p.c.Status) == 0 {
		return code >= 200 && code <= 299
	}
	for _, s := range p.c.Status {
		if s == code {
			return true
		}
	}
	return false
}

func (p *httpProber) wantStatus() string {
	if len(p.c.Status) == 0 {
		return "2xx"
	}
	s := make([]string, len(p.c.Status))
	for i, c := range p.c.Status {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " or ")
}

func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// timings records the phases of one HTTP request from httptrace callbacks,
// which may come from several goroutines.
type timings struct {
	mu              sync.Mutex
	ph              []Phase
	tlsStart, wrote time.Time
}

func (t *timings) add(ph ...Phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ph = append(t.ph, ph...)
}

func (t *timings) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		TLSHandshakeStart: func() {
			t.mu.Lock()
			t.tlsStart = time.Now()
			t.mu.Unlock()
		},
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			t.mu.Lock()
			if !t.tlsStart.IsZero() {
				t.ph = append(t.ph, Phase{"tls", time.Since(t.tlsStart)})
			}
			t.mu.Unlock()
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			t.mu.Lock()
			t.wrote = time.Now()
			t.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			t.mu.Lock()
			if !t.wrote.IsZero() {
				t.ph = append(t.ph, Phase{"first_byte", time.Since(t.wrote)})
			}
			t.mu.Unlock()
		},
	}
}

func (t *timings) phases() []Phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Phase(nil), t.ph...)
}
