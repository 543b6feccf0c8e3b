//go:build !linux

package dnsserver

import "net"

type batchReader struct{}

// newBatchReader: no batched UDP system calls on this platform.
func newBatchReader(*Server, *net.UDPConn, *steer, *worker) *batchReader { return nil }

func (*batchReader) run() {}

// pktinfo: without batched I/O there is no source address control; bind
// explicit addresses on this platform.
func pktinfo(string, int) error { return nil }

// dontFragment: the kernel's default (fragments allowed) on this platform.
func dontFragment(string, int) error { return nil }
