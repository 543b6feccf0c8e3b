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
