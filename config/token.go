package config

// Admin API tokens ([[http.tokens]]) and rate limits of the HTTP side.

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// Defaults of the HTTP rate limits (per client address, token bucket).
const (
	DefaultStatusRate  = 10
	DefaultStatusBurst = 20
	DefaultAdminRate   = 5
	DefaultAdminBurst  = 10
)

// Roles of an admin token.
const (
	// RoleRead may read the admin API (history, nodes).
	RoleRead Role = "read"
	// RoleOperator may also run commands (promote, failover, drain, ...).
	RoleOperator Role = "operator"
)

// Role is what a token may do: "read" or "operator".
type Role string

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	switch s := Role(strings.ToLower(strings.TrimSpace(string(b)))); s {
	case RoleRead, RoleOperator:
		*r = s
		return nil
	default:
		return fmt.Errorf("bad role %q: want read or operator", string(b))
	}
}

// Token is one [[http.tokens]]: a bearer token of the admin API, stored as
// the SHA-256 of the token's text (so the config file holds no secret).
type Token struct {
	// Name is the audited actor of the token's commands (a plain label, unique).
	Name string `toml:"name"`
	// SHA256 is sha256(token) written as 64 hex digits.
	SHA256 SHA256 `toml:"sha256"`
	// Role is read or operator.
	Role Role `toml:"role"`
}

// SHA256 is a SHA-256 digest written as 64 hexadecimal digits.
type SHA256 [sha256.Size]byte

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *SHA256) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) != 2*sha256.Size {
		return fmt.Errorf("bad sha256: want 64 hex digits (sha256 of the token, e.g. from `failoverctl token`), got %d characters", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return fmt.Errorf("bad sha256: not hexadecimal: %v", err)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (h SHA256) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

// String returns the digest in lower-case hex.
func (h SHA256) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether no digest was given.
func (h SHA256) IsZero() bool { return h == SHA256{} }

// Matches reports whether token hashes to h.
// The comparison takes constant time.
func (h SHA256) Matches(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(sum[:], h[:]) == 1
}

// finishHTTPSection validates [http] tokens and rate limits.
func (c *Config) finishHTTPSection(v *validator) {
	h := &c.HTTP
	names := map[string]int{}
	hashes := map[SHA256]int{}
	for i := range h.Tokens {
		t := &h.Tokens[i]
		key := fmt.Sprintf("http.tokens[%d]", i)
		switch j, dup := names[t.Name]; {
		case t.Name == "":
			v.errorf(key+".name", "missing: every token needs a name (the actor named in the audit history)")
		case !isLabel(t.Name):
			v.errorf(key+".name", "%q is not a plain name: use letters, digits, '-' and '_'", t.Name)
		case dup:
			v.errorf(key+".name", "token %q is defined twice (also at http.tokens[%d])", t.Name, j)
		default:
			names[t.Name] = i
		}
		switch j, dup := hashes[t.SHA256]; {
		case t.SHA256.IsZero():
			v.errorf(key+".sha256", "missing: the sha256 of the token in hex (`failoverctl token` makes both)")
		case dup:
			v.errorf(key+".sha256", "the same token as http.tokens[%d] (%s): each actor needs a token of its own", j, h.Tokens[j].Name)
		default:
			hashes[t.SHA256] = i
		}
		if t.Role == "" {
			v.errorf(key+".role", "missing: read or operator")
		}
	}
	for _, r := range []struct {
		key   string
		rate  float64
		burst int
	}{{"status", h.StatusRate, h.StatusBurst}, {"admin", h.AdminRate, h.AdminBurst}} {
		if !(r.rate >= 0 && r.rate <= 1e6) { // also NaN
			v.errorf("http."+r.key+"_rate", "%v is out of range 0..1000000 requests per second (0: no limit)", r.rate)
		}
		if r.rate > 0 && (r.burst < 1 || r.burst > 1e6) {
			v.errorf("http."+r.key+"_burst", "%d is out of range 1..1000000", r.burst)
		}
	}
}
