package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

// maxCommandBody bounds a command's JSON body.
const maxCommandBody = 64 << 10

// admin serves /api/v1/...
type admin struct {
	o      *Options
	tokens []tokenEntry
	r      *renderer
	m      *metrics
	log    *slog.Logger
}

// writeError writes an API error as JSON (api.ErrorBody).
func writeError(w http.ResponseWriter, code int, body api.ErrorBody) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(body)
	w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.ErrorBody{Error: api.ReasonInternal, Message: err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

type ctxKey struct{}

// actorOf is the authenticated token's name.
func actorOf(r *http.Request) string {
	t, _ := r.Context().Value(ctxKey{}).(tokenEntry)
	return t.name
}

// require authenticates the bearer token and checks its role: 401 with
// WWW-Authenticate (RFC 6750 §3) for a missing or unknown token, 403 for a
// read token on a command. Every refusal is counted.
func (a *admin) require(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, reason := authenticate(a.tokens, r)
			if reason != "" {
				a.m.authFailures.WithLabelValues(reason).Inc()
				a.log.Warn("admin api: authentication failed", "reason", reason, "remote", r.RemoteAddr, "path", r.URL.Path)
				if reason == "missing" {
					w.Header().Set("WWW-Authenticate", `Bearer realm="geodnsd"`)
					writeError(w, http.StatusUnauthorized, api.ErrorBody{Error: api.ReasonUnauthorized, Message: "missing bearer token (Authorization: Bearer TOKEN)"})
				} else {
					w.Header().Set("WWW-Authenticate", `Bearer realm="geodnsd", error="invalid_token"`)
					writeError(w, http.StatusUnauthorized, api.ErrorBody{Error: api.ReasonUnauthorized, Message: "the bearer token is not one of http.tokens"})
				}
				return
			}
			if role == RoleOperator && t.role != RoleOperator {
				a.m.authFailures.WithLabelValues("forbidden").Inc()
				a.log.Warn("admin api: forbidden", "actor", t.name, "role", t.role, "path", r.URL.Path)
				writeError(w, http.StatusForbidden, api.ErrorBody{Error: api.ReasonForbidden,
					Message: fmt.Sprintf("token %q has role %s; this needs role operator", t.name, t.role)})
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t)))
		})
	}
}

// command handles POST /api/v1/{op}.
func (a *admin) command(w http.ResponseWriter, r *http.Request, op string) {
	fail := func(code int, result string, body api.ErrorBody) {
		a.m.commands.WithLabelValues(op, result).Inc()
		writeError(w, code, body)
	}
	wait := r.URL.Query().Get("wait")
	if wait != "" && wait != "all" && wait != "leader" {
		fail(http.StatusUnprocessableEntity, "invalid", api.ErrorBody{Error: api.ReasonInvalid, Message: fmt.Sprintf("wait=%q: want all or leader", wait)})
		return
	}
	var req api.CommandRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCommandBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(http.StatusRequestEntityTooLarge, "invalid", api.ErrorBody{Error: api.ReasonTooLarge, Message: fmt.Sprintf("body larger than %d bytes", maxCommandBody)})
			return
		}
		fail(http.StatusBadRequest, "invalid", api.ErrorBody{Error: api.ReasonInvalid, Message: "read body: " + err.Error()})
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
			fail(http.StatusUnsupportedMediaType, "invalid", api.ErrorBody{Error: api.ReasonUnsupported, Message: "Content-Type must be application/json"})
			return
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(http.StatusUnprocessableEntity, "invalid", api.ErrorBody{Error: api.ReasonInvalid, Message: "body: " + err.Error()})
			return
		}
		if dec.More() {
			fail(http.StatusUnprocessableEntity, "invalid", api.ErrorBody{Error: api.ReasonInvalid, Message: "body: more than one JSON value"})
			return
		}
	}
	c := failover.Command{
		Time: a.o.now().UTC(), Op: failover.Op(op), Service: req.Service, Site: req.Site, Route: req.Route,
		Mode: failover.Mode(req.Mode), Failback: failover.Mode(req.Failback), Force: req.Force, Reason: req.Reason,
		Actor: actorOf(r),
	}
	cur := a.r.get()
	if cur.view.Halted != "" {
		fail(http.StatusServiceUnavailable, "unavailable", api.ErrorBody{Error: api.ReasonUnavailable, Command: c.String(),
			Message: "this node's state machine halted (" + cur.view.Halted + "): commands are refused (try another node)"})
		return
	}
	if !cur.view.Quorum {
		fail(http.StatusServiceUnavailable, "unavailable", api.ErrorBody{Error: api.ReasonUnavailable, Command: c.String(),
			Message: "this node has no quorum: commands are refused (try another node)"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.CommandTimeout)
	defer cancel()
	res, err := a.o.Backend.Submit(ctx, c)
	if err != nil {
		a.submitError(w, c, err, fail)
		return
	}
	applied := "leader"
	if wait == "all" {
		if err := a.o.Backend.WaitAll(ctx, res.Index); err != nil {
			fail(http.StatusServiceUnavailable, "unavailable", api.ErrorBody{Error: api.ReasonTimeout, Command: c.String(),
				Message: fmt.Sprintf("committed at index %d, but not applied by every reachable node within %s: %v", res.Index, a.o.CommandTimeout, err)})
			return
		}
		applied = "all"
	}
	a.m.commands.WithLabelValues(op, "accepted").Inc()
	a.log.Info("command accepted", "actor", c.Actor, "command", c.String(), "force", c.Force, "reason", c.Reason, "index", res.Index, "epoch", res.Epoch)
	out := api.CommandResult{Command: c.String(), Actor: c.Actor, Index: res.Index, Epoch: res.Epoch, Applied: applied, Entries: []api.HistoryEntry{}}
	entries := res.Entries
	if entries == nil {
		entries = a.findEntries(ctx, c, res.Index)
	}
	for _, e := range entries {
		out.Entries = append(out.Entries, entryOf(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// findEntries finds a command's history entries in the view when the
// backend did not return them: the newest command entries of the same actor
// and op, recorded at one instant. On a node that forwarded the command it
// first waits (bounded by ctx) for its own view to reach index.
func (a *admin) findEntries(ctx context.Context, c failover.Command, index uint64) []failover.Entry {
	for {
		ch := a.o.Backend.Changed()
		if a.o.Backend.View().Index >= index {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
	cur := a.r.get()
	if cur.view.Index < index || cur.fstatus == nil {
		return nil
	}
	h := cur.fstatus.History
	var out []failover.Entry
	for i := len(h) - 1; i >= 0; i-- {
		e := h[i]
		if e.Kind != failover.KindCommandEntry || e.Actor != c.Actor || e.What != string(c.Op) {
			if out != nil {
				break
			}
			continue
		}
		if out != nil && !e.Time.Equal(out[0].Time) {
			break
		}
		out = append([]failover.Entry{e}, out...)
	}
	return out
}

func (a *admin) submitError(w http.ResponseWriter, c failover.Command, err error, fail func(int, string, api.ErrorBody)) {
	switch {
	case errors.Is(err, failover.ErrRefused):
		check, observed := refusalBlocker(err, c, a.r.get().fstatus)
		a.log.Info("command refused", "actor", c.Actor, "command", c.String(), "check", check, "observed", observed)
		fail(http.StatusConflict, "refused", api.ErrorBody{Error: api.ReasonRefused, Command: c.String(),
			Message: err.Error() + " (--force --reason overrides)", Check: check, Observed: observed})
	case errors.Is(err, failover.ErrInvalid):
		fail(http.StatusUnprocessableEntity, "invalid", api.ErrorBody{Error: api.ReasonInvalid, Command: c.String(), Message: err.Error()})
	case errors.Is(err, ErrUnavailable):
		fail(http.StatusServiceUnavailable, "unavailable", api.ErrorBody{Error: api.ReasonUnavailable, Command: c.String(), Message: err.Error()})
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		fail(http.StatusServiceUnavailable, "unavailable", api.ErrorBody{Error: api.ReasonTimeout, Command: c.String(),
			Message: fmt.Sprintf("not committed within %s: %v", a.o.CommandTimeout, err)})
	default:
		a.log.Error("command failed", "actor", c.Actor, "command", c.String(), "err", err)
		fail(http.StatusInternalServerError, "error", api.ErrorBody{Error: api.ReasonInternal, Command: c.String(), Message: err.Error()})
	}
}

// History page sizes.
const (
	defaultHistoryPage = 50
	maxHistoryPage     = 1000
)

// history handles GET /api/v1/history?limit=N&before=SEQ.
func (a *admin) history(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, before := defaultHistoryPage, uint64(math.MaxUint64)
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxHistoryPage {
			writeError(w, http.StatusUnprocessableEntity, api.ErrorBody{Error: api.ReasonInvalid, Message: fmt.Sprintf("limit=%q: want an integer from 1 to %d", s, maxHistoryPage)})
			return
		}
		limit = n
	}
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, api.ErrorBody{Error: api.ReasonInvalid, Message: fmt.Sprintf("before=%q: want a history seq", s)})
			return
		}
		if n > 0 {
			before = n
		}
	}
	h := a.r.get().history // newest first
	i, _ := slices.BinarySearchFunc(h, before, func(e api.HistoryEntry, t uint64) int {
		// descending order: entries >= before come first
		switch {
		case e.Seq >= t:
			return -1
		default:
			return 1
		}
	})
	page := api.HistoryPage{Entries: []api.HistoryEntry{}}
	page.Entries = append(page.Entries, h[i:min(len(h), i+limit)]...)
	if end := i + limit; end < len(h) {
		page.Next = page.Entries[len(page.Entries)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

// nodes handles GET /api/v1/nodes.
func (a *admin) nodes(w http.ResponseWriter, _ *http.Request) {
	s := a.r.get().status
	writeJSON(w, http.StatusOK, api.NodesReply{Leader: s.Leader, Quorum: s.Quorum, ConfigMismatch: s.ConfigMismatch, Nodes: s.Nodes})
}
