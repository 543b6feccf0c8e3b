package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Role is what a token may do.
type Role string

// Roles.
const (
	// RoleRead may read the admin API (history, nodes, status).
	RoleRead Role = "read"
	// RoleOperator may also run every command.
	RoleOperator Role = "operator"
)

// Token is one admin API bearer token as the configuration stores it
// ([[http.tokens]]): only the hash of the secret is known to the server.
type Token struct {
	// Name is the actor recorded in the audit history.
	Name string
	// SHA256 is the lower- or upper-case hex of sha256(token), 64 digits.
	SHA256 string
	// Role is "read" or "operator".
	Role Role
}

type tokenEntry struct {
	name string
	hash [sha256.Size]byte
	role Role
}

func compileTokens(ts []Token) ([]tokenEntry, error) {
	out := make([]tokenEntry, 0, len(ts))
	seen := map[string]bool{}
	for i, t := range ts {
		where := fmt.Sprintf("http.tokens[%d]", i)
		if t.Name == "" {
			return nil, fmt.Errorf("%s.name: empty", where)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("%s.name: %q appears twice", where, t.Name)
		}
		seen[t.Name] = true
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("%s.sha256: want 64 hex digits (sha256 of the token), got %d characters", where, len(t.SHA256))
		}
		if t.Role != RoleRead && t.Role != RoleOperator {
			return nil, fmt.Errorf("%s.role: %q is not read or operator", where, t.Role)
		}
		e := tokenEntry{name: t.Name, role: t.Role}
		copy(e.hash[:], b)
		out = append(out, e)
	}
	return out, nil
}

// authenticate finds the token presented as "Authorization: Bearer T"
// (RFC 6750 §2.1). It compares the hash against every configured token in
// constant time. reason is "missing" or "invalid" when it fails.
func authenticate(tokens []tokenEntry, r *http.Request) (tokenEntry, string) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		if h == "" {
			return tokenEntry{}, "missing"
		}
		return tokenEntry{}, "invalid"
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := -1
	for i := range tokens {
		if subtle.ConstantTimeCompare(sum[:], tokens[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return tokenEntry{}, "invalid"
	}
	return tokens[found], ""
}

// limiter is a token bucket per client address: rate tokens per second, up
// to burst. IPv6 clients are limited per /64 (one host usually owns one).
// It holds at most maxClients buckets; beyond that, idle (full) buckets are
// dropped, and if none is idle every bucket is.
type limiter struct {
	rate, burst float64
	now         func() time.Time
	maxClients  int

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	if rate < 0 {
		return nil // unlimited
	}
	return &limiter{rate: rate, burst: float64(max(burst, 1)), now: now, maxClients: 1 << 16, m: map[netip.Addr]*bucket{}}
}

func clientKey(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes one token from the client's bucket; false means refuse. wait
// is how long until a token is available.
func (l *limiter) allow(remote string) (ok bool, wait time.Duration) {
	if l == nil {
		return true, 0
	}
	k := clientKey(remote)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[k]
	if b == nil {
		if len(l.m) >= l.maxClients {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[k] = b
	}
	if el := now.Sub(b.last); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate == 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

func (l *limiter) sweep(now time.Time) {
	for k, b := range l.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.m, k)
		}
	}
	if len(l.m) >= l.maxClients {
		clear(l.m)
	}
}
