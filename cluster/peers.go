package cluster

// Asking the other members how far they have applied the log: what
// `failoverctl --wait` (?wait=all) waits on. It runs over the same mutual-TLS
// port as forwarding.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxAppliedWait bounds how long a member holds an /v1/applied request open.
const maxAppliedWait = 30 * time.Second

// appliedReply is a member's answer to GET /v1/applied.
type appliedReply struct {
	Index  uint64 `json:"index"`
	Halted string `json:"halted,omitempty"`
}

// serveApplied answers GET /v1/applied?index=N&wait_ms=M: this member's
// applied index once it is at least N, or after M milliseconds (bounded by
// maxAppliedWait), whichever comes first.
func (c *Cluster) serveApplied(w http.ResponseWriter, r *http.Request) {
	index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	ms, _ := strconv.ParseInt(r.URL.Query().Get("wait_ms"), 10, 64)
	wait := min(time.Duration(ms)*time.Millisecond, maxAppliedWait)
	if index > 0 && wait > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		_ = c.WaitApplied(ctx, index) // the reply says how far it got
		cancel()
	}
	v := c.View()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(appliedReply{Index: v.Index, Halted: v.Halted})
}

// ErrLagging is wrapped by WaitAll's error when a reachable member had not
// applied the index when the wait ended.
var ErrLagging = errors.New("cluster: a reachable member has not applied the entry")

// WaitAll waits until every reachable member has applied index, and returns
// each member's applied index as far as it learnt it (this member's always;
// a member it could not reach is missing). A member that cannot be reached
// does not hold the wait up: it will catch up from the log when it returns.
// The error wraps ErrLagging (naming the members) when a member answered but
// had not applied index by ctx's deadline; ErrHalted when this member halted.
func (c *Cluster) WaitAll(ctx context.Context, index uint64) (map[string]uint64, error) {
	if err := c.WaitApplied(ctx, index); err != nil {
		return map[string]uint64{c.o.ID: c.View().Index}, err
	}
	out := map[string]uint64{c.o.ID: c.View().Index}
	if c.fwdClient == nil {
		return out, nil
	}
	wait := time.Until(deadline(ctx, c.o.WriteTimeout))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var lagging []string
	for _, m := range c.ros.get() {
		if m.ID == c.o.ID {
			continue
		}
		wg.Go(func() {
			got, err := c.askApplied(ctx, m.ID, index, wait)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				return // unreachable: not waited for
			}
			out[m.ID] = got
			if got < index {
				lagging = append(lagging, fmt.Sprintf("%s at %d", m.ID, got))
			}
		})
	}
	wg.Wait()
	if len(lagging) > 0 {
		return out, fmt.Errorf("%w: want index %d: %v", ErrLagging, index, lagging)
	}
	return out, nil
}

// askApplied asks member id for its applied index, letting it wait up to
// wait for index.
func (c *Cluster) askApplied(ctx context.Context, id string, index uint64, wait time.Duration) (uint64, error) {
	url := fmt.Sprintf("https://%s/v1/applied?index=%d&wait_ms=%d", id, index, wait.Milliseconds())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	r, err := c.fwdClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", id, r.Status)
	}
	var ar appliedReply
	if err := json.NewDecoder(r.Body).Decode(&ar); err != nil {
		return 0, err
	}
	return ar.Index, nil
}
