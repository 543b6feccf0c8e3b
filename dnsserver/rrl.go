package dnsserver

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"time"
)

// Response rate limiting, as NSD, Knot and BIND do it against spoofed
// floods that use us as an amplifier: UDP responses are counted per client
// network (/24 for IPv4, /56 for IPv6) and second; past Rate responses in a
// second, a network's responses are dropped, except every Slip-th, which
// is sent truncated (TC=1, no records) so that a real client behind the
// network retries over TCP. Networks in the allow list are never limited,
// nor is TCP. Off (Rate 0) by default.
//
// The counters are a fixed table of 2^16 slots shared by every UDP
// worker, each an atomic (second, count) pair, indexed by a hash of the
// network: no lock, no allocation; two networks that share a slot share
// its budget.

const (
	rrlSlots = 1 << 16
	rrlBits4 = 24
	rrlBits6 = 56
)

// RRL configures response rate limiting; the zero value is off.
type RRL struct {
	Rate  uint32         // responses per second per client network; 0: off
	Slip  uint32         // every Slip-th limited response is sent truncated; 0: none
	Allow []netip.Prefix // client networks never limited
}

type rrl struct {
	conf  RRL
	now   func() time.Time
	seed  maphash.Seed
	slots []atomic.Uint64 // second<<32 | count

	dropped, slipped atomic.Uint64
}

func newRRL(c RRL) *rrl {
	if c.Rate == 0 {
		return nil
	}
	return &rrl{conf: c, now: time.Now, seed: maphash.MakeSeed(), slots: make([]atomic.Uint64, rrlSlots)}
}

// rrlVerdict says what to do with one response.
type rrlVerdict uint8

const (
	rrlSend rrlVerdict = iota
	rrlDrop
	rrlSlip
)

// check counts one response to addr and says whether to send it.
func (r *rrl) check(addr netip.Addr) rrlVerdict {
	if !addr.IsValid() {
		return rrlSend
	}
	for _, p := range r.conf.Allow {
		if p.Contains(addr) {
			return rrlSend
		}
	}
	bits := rrlBits4
	if addr.Is6() {
		bits = rrlBits6
	}
	net, _ := addr.Prefix(bits)
	a := net.Addr().As16()
	slot := &r.slots[maphash.Bytes(r.seed, a[:])%rrlSlots]
	sec := uint32(r.now().Unix())
	var count uint32
	for {
		old := slot.Load()
		count = 1
		if uint32(old>>32) == sec {
			count = uint32(old) + 1
		}
		if slot.CompareAndSwap(old, uint64(sec)<<32|uint64(count)) {
			break
		}
	}
	if count <= r.conf.Rate {
		return rrlSend
	}
	if s := r.conf.Slip; s > 0 && (count-r.conf.Rate)%s == 0 {
		r.slipped.Add(1)
		return rrlSlip
	}
	r.dropped.Add(1)
	return rrlDrop
}

// respondUDP is respondFrom for UDP, with response rate limiting.
func (w *worker) respondUDP(dst, msg []byte, from netip.Addr) []byte {
	start := len(dst)
	out := w.respondFrom(dst, msg, from)
	if w.h.rrl == nil || len(out) == start {
		return out
	}
	switch w.h.rrl.check(from) {
	case rrlDrop:
		return out[:start]
	case rrlSlip:
		if out[start+2]&(flagTC>>8) == 0 { // a TC reply was counted when built
			w.ctr.truncated.Add(1) // every UDP response sent with TC
		}
		return truncate(out, start)
	}
	return out
}

// truncate cuts the reply at dst[start:] to its header and question, with
// TC set and no records.
func truncate(dst []byte, start int) []byte {
	r := dst[start:]
	if len(r) < headerLen {
		return dst[:start]
	}
	end := headerLen
	if binary.BigEndian.Uint16(r[4:]) > 0 {
		if e, ok := skipName(r, headerLen); ok && e+4 <= len(r) {
			end = e + 4
			binary.BigEndian.PutUint16(r[4:], 1) // the first question only
		} else {
			binary.BigEndian.PutUint16(r[4:], 0)
		}
	}
	r[2] |= flagTC >> 8
	for i := 6; i < headerLen; i++ {
		r[i] = 0
	}
	return dst[:start+end]
}

// truncateKeepOPT is truncate for a reply that did not fit the way out: it
// keeps the reply's OPT record, as every reply to an EDNS query carries one
// (RFC 6891 §7), so that the client sees TC with EDNS and asks again over
// TCP. The OPT moves up to just after the question. hadTC reports that
// the reply was built with TC already (and counted truncated then).
func truncateKeepOPT(reply []byte) (t []byte, hadTC bool) {
	hadTC = len(reply) > 2 && reply[2]&(flagTC>>8) != 0
	opt := findOPT(reply)
	t = truncate(reply, 0)
	if opt < 0 || len(t) == 0 {
		return t, hadTC
	}
	end, _, _ := skipRR(reply, opt)
	n := len(t)
	t = reply[:n+end-opt]
	copy(t[n:], reply[opt:end])
	binary.BigEndian.PutUint16(t[10:], 1)
	return t, hadTC
}

// findOPT returns the offset of the OPT record in the additional section of
// the reply msg, -1 when it has none or does not parse.
func findOPT(msg []byte) int {
	if len(msg) < headerLen {
		return -1
	}
	off := headerLen
	for range binary.BigEndian.Uint16(msg[4:]) {
		e, ok := skipName(msg, off)
		if !ok {
			return -1
		}
		off = e + 4
	}
	an := int(binary.BigEndian.Uint16(msg[6:])) + int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	for i := range an + ar {
		end, typ, ok := skipRR(msg, off)
		if !ok {
			return -1
		}
		if i >= an && typ == typeOPT {
			return off
		}
		off = end
	}
	return -1
}
