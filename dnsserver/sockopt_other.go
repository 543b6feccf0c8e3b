//go:build !unix

package dnsserver

import "syscall"

// control: no SO_REUSEPORT here; use SocketsPerAddress 1.
func control(_, _ string, _ syscall.RawConn) error { return nil }
