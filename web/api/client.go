package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrUnavailable is wrapped by the client's error when no server could be
// reached (connection refused, timeout, ...); the last transport error is
// in the chain too.
var ErrUnavailable = errors.New("no server reachable")

// Error is a reply with an error status from a server, with its body.
type Error struct {
	Server string // base URL of the server that replied
	Status int    // HTTP status
	Body   ErrorBody
}

func (e *Error) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s: %s (%d %s)", e.Server, msg, e.Status, e.Body.Error)
}

// Client calls the geodnsd HTTP API. The zero value is not usable: set
// Servers. Each request tries the servers in order and moves on to the next
// one when a server cannot be reached, or replies 503 (no quorum on its side
// of a partition) or 429; any other reply, success or error, is final.
type Client struct {
	// Servers are base URLs such as "http://ns1.example.net:8053".
	Servers []string
	// Token is the bearer token; empty sends none (public endpoints only).
	Token string
	// HTTP is the client used; nil means http.DefaultClient. Its Timeout
	// bounds each attempt; ctx bounds the whole call.
	HTTP *http.Client
	// MaxBody bounds a reply's size in bytes; zero means 16 MiB.
	MaxBody int64
}

// Status fetches GET /status.json (public: no token needed).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.do(ctx, http.MethodGet, "/status.json", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Command runs POST /api/v1/<op> with req. With waitAll it returns once every
// reachable node has applied the command (?wait=all). A refusal is an *Error
// with Status 409 and Body.Check/Observed set.
func (c *Client) Command(ctx context.Context, op string, req CommandRequest, waitAll bool) (*CommandResult, error) {
	p := "/api/v1/" + url.PathEscape(op)
	if waitAll {
		p += "?wait=all"
	}
	var r CommandResult
	if err := c.do(ctx, http.MethodPost, p, req, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// History fetches one page of GET /api/v1/history: at most limit entries
// (0: the server's default) older than seq before (0: the newest).
func (c *Client) History(ctx context.Context, limit int, before uint64) (*HistoryPage, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before > 0 {
		q.Set("before", strconv.FormatUint(before, 10))
	}
	p := "/api/v1/history"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var h HistoryPage
	if err := c.do(ctx, http.MethodGet, p, nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Nodes fetches GET /api/v1/nodes.
func (c *Client) Nodes(ctx context.Context) (*NodesReply, error) {
	var n NodesReply
	if err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if len(c.Servers) == 0 {
		return fmt.Errorf("%w: no server given", ErrUnavailable)
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	max := c.MaxBody
	if max <= 0 {
		max = 16 << 20
	}
	var last error
	for _, srv := range c.Servers {
		base := strings.TrimRight(srv, "/")
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("server %q: %w", srv, err)
		}
		req.Header.Set("Accept", "application/json")
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, max+1))
		resp.Body.Close()
		if rerr != nil {
			last = fmt.Errorf("%s: read reply: %w", base, rerr)
			continue
		}
		if int64(len(b)) > max {
			return fmt.Errorf("%s: reply larger than %d bytes", base, max)
		}
		if resp.StatusCode >= 300 {
			e := &Error{Server: base, Status: resp.StatusCode}
			if jerr := json.Unmarshal(b, &e.Body); jerr != nil || e.Body.Error == "" {
				e.Body = ErrorBody{Error: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(firstLine(string(b)))}
			}
			if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
				last = e
				continue
			}
			return e
		}
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s%s: reply is not the expected JSON: %w", base, path, err)
		}
		return nil
	}
	var ae *Error
	if errors.As(last, &ae) {
		return last
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, last)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
