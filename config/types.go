package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("5s", "250ms").
// A bare number is refused: "5" could mean seconds or nanoseconds.
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Errorf("empty duration")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := fmt.Sscanf(s, "%f", new(float64)); nerr == nil && !strings.ContainsAny(s, "hmsuµn") {
			return fmt.Errorf("duration %q has no unit: write it as a string like \"%ss\"", s, s)
		}
		return fmt.Errorf("bad duration %q: %w", s, err)
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// AddrPort is a listen address: an IP literal and a port ("127.0.0.1:5353", "[::1]:53").
type AddrPort struct{ netip.AddrPort }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *AddrPort) UnmarshalText(b []byte) error {
	v, err := netip.ParseAddrPort(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("bad address %q: want IP:port, with [ ] around an IPv6 address: %w", string(b), err)
	}
	a.AddrPort = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (a AddrPort) MarshalText() ([]byte, error) { return []byte(a.AddrPort.String()), nil }

// LogLevel is one of debug, info, warn, error.
type LogLevel string

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *LogLevel) UnmarshalText(b []byte) error {
	switch s := strings.ToLower(strings.TrimSpace(string(b))); s {
	case "debug", "info", "warn", "error":
		*l = LogLevel(s)
		return nil
	default:
		return fmt.Errorf("bad log level %q: want debug, info, warn or error", string(b))
	}
}
