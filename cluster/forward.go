package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// Forwarding: a follower sends its writes to the leader as HTTP/1.1 POST
// /v1/write over a mutual-TLS connection to the leader's raft port
// (protocol byte 'F'). The URL's host is the leader's member id; the
// dialer maps it to the member's raft address and checks the leader's
// certificate names it.

const maxForwardBody = 64 << 20

// wireRequest is a forwarded write.
type wireRequest struct {
	Events  [][]byte          `json:"events,omitempty"` // failover.EncodeEvent each
	Command *failover.Command `json:"command,omitempty"`
	Spec    *failover.Spec    `json:"spec,omitempty"`
	RTT     time.Duration     `json:"rtt_ns,omitempty"`
	// TimeoutMS is how long the sender will wait (its remaining bound).
	TimeoutMS int64 `json:"timeout_ms"`
}

// wireResponse is the leader's answer.
type wireResponse struct {
	Index uint64     `json:"index"`
	Epoch uint64     `json:"epoch"`
	Error *wireError `json:"error,omitempty"`
	// Took is how long the leader held the request (commit included), so
	// the sender can tell network delay from it.
	Took time.Duration `json:"took_ns"`
}

// wireError carries an error's class so that errors.Is holds on the
// caller as it would on the leader.
type wireError struct {
	// Kind: command (a *failover.CommandError), invalid, refused,
	// not_leader, no_quorum, halted, other.
	Kind    string `json:"kind"`
	Command string `json:"command,omitempty"`
	Refused bool   `json:"refused,omitempty"`
	Msg     string `json:"msg"`
	Route   string `json:"route,omitempty"`
	Site    string `json:"site,omitempty"`
}

// remoteError is an error that came back from the leader: its message as
// there, unwrapping to the sentinel of its class.
type remoteError struct {
	msg    string
	target error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.target }

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	var ce *failover.CommandError
	switch {
	case errors.As(err, &ce):
		return &wireError{Kind: "command", Command: ce.Command, Refused: ce.Refused, Msg: ce.Msg, Route: ce.Route, Site: ce.Site}
	case retryable(err):
		return &wireError{Kind: "not_leader", Msg: err.Error()}
	case errors.Is(err, ErrHalted):
		return &wireError{Kind: "halted", Msg: err.Error()}
	case errors.Is(err, ErrNoQuorum), errors.Is(err, context.DeadlineExceeded):
		return &wireError{Kind: "no_quorum", Msg: err.Error()}
	case errors.Is(err, failover.ErrInvalid):
		return &wireError{Kind: "invalid", Msg: err.Error()}
	case errors.Is(err, failover.ErrRefused):
		return &wireError{Kind: "refused", Msg: err.Error()}
	}
	return &wireError{Kind: "other", Msg: err.Error()}
}

func (w *wireError) err() error {
	switch w.Kind {
	case "command":
		return &failover.CommandError{Command: w.Command, Refused: w.Refused, Msg: w.Msg, Route: w.Route, Site: w.Site}
	case "not_leader":
		return &remoteError{msg: w.Msg, target: errNotLeader}
	case "halted":
		return &remoteError{msg: "leader: " + w.Msg, target: ErrHalted}
	case "no_quorum":
		return &remoteError{msg: "leader: " + w.Msg, target: ErrNoQuorum}
	case "invalid":
		return &remoteError{msg: w.Msg, target: failover.ErrInvalid}
	case "refused":
		return &remoteError{msg: w.Msg, target: failover.ErrRefused}
	}
	return errors.New("leader: " + w.Msg)
}

// startForwarding serves forwarded writes on ln and prepares the client.
func (c *Cluster) startForwarding(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/write", c.serveWrite)
	mux.HandleFunc("GET /v1/applied", c.serveApplied)
	c.fwdSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.o.Logger.Handler(), slog.LevelDebug),
	}
	go c.fwdSrv.Serve(ln)
	c.fwdClient = &http.Client{Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return c.mux.dial(ctx, host, protoForward)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
		ForceAttemptHTTP2:   false,
	}}
}

// serveWrite is the leader's side of forwarding.
func (c *Cluster) serveWrite(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var wr wireRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForwardBody))
	if err == nil {
		err = json.Unmarshal(body, &wr)
	}
	var resp wireResponse
	if err != nil {
		resp.Error = &wireError{Kind: "invalid", Msg: "forwarded write: " + err.Error()}
	} else {
		req := writeReq{Command: wr.Command, Spec: wr.Spec, RTT: wr.RTT}
		for i, b := range wr.Events {
			e, err := failover.DecodeEvent(b)
			if err != nil {
				resp.Error = &wireError{Kind: "invalid", Msg: fmt.Sprintf("forwarded event %d: %v", i, err)}
				break
			}
			req.Events = append(req.Events, e)
		}
		if resp.Error == nil {
			timeout := time.Duration(wr.TimeoutMS) * time.Millisecond
			if timeout <= 0 || timeout > c.o.WriteTimeout {
				timeout = c.o.WriteTimeout
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			var res Applied
			if _, lid := c.raft.LeaderWithID(); string(lid) != c.o.ID {
				err = errNotLeader
			} else {
				res, err = c.applyLocal(ctx, req)
			}
			cancel()
			resp.Index, resp.Epoch, resp.Error = res.Index, res.Epoch, toWire(err)
		}
	}
	resp.Took = time.Since(start)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&resp)
}

// forward sends req to the leader and decodes its answer. A failure to
// reach it is transient (the write is retried, perhaps at a new leader).
func (c *Cluster) forward(ctx context.Context, leader string, req writeReq) (Applied, error) {
	wr := wireRequest{Command: req.Command, Spec: req.Spec, RTT: c.rtt(), TimeoutMS: time.Until(deadline(ctx, c.o.WriteTimeout)).Milliseconds()}
	for _, e := range req.Events {
		b, err := failover.EncodeEvent(e)
		if err != nil {
			return Applied{}, fmt.Errorf("%w: %v", failover.ErrInvalid, err)
		}
		wr.Events = append(wr.Events, b)
	}
	body, err := json.Marshal(&wr)
	if err != nil {
		return Applied{}, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+leader+"/v1/write", bytes.NewReader(body))
	if err != nil {
		return Applied{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Content-Length", strconv.Itoa(len(body)))
	start := time.Now()
	r, err := c.fwdClient.Do(hr)
	if err != nil {
		c.met.forwarded.WithLabelValues("error").Inc()
		return Applied{}, transientError{fmt.Errorf("forward to leader %s: %w", leader, err)}
	}
	defer r.Body.Close()
	var resp wireResponse
	if err := json.NewDecoder(io.LimitReader(r.Body, maxForwardBody)).Decode(&resp); err != nil {
		c.met.forwarded.WithLabelValues("error").Inc()
		return Applied{}, transientError{fmt.Errorf("forward to leader %s: reply: %w", leader, err)}
	}
	c.lastRTT.Store(int64(max(0, time.Since(start)-resp.Took)))
	c.met.forwarded.WithLabelValues("ok").Inc()
	out := Applied{Index: resp.Index, Epoch: resp.Epoch}
	if resp.Error != nil {
		return out, resp.Error.err()
	}
	return out, nil
}

// rtt is the network part of the last forwarding round trip.
func (c *Cluster) rtt() time.Duration { return time.Duration(c.lastRTT.Load()) }
