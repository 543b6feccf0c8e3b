package dnsserver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/zones"
)

// NOTIFY (RFC 1996) to the secondaries of Options.Notify: nothing is sent
// unless addresses are configured. The notifier looks at the current
// snapshot every Options.NotifyInterval; when a zone's SOA serial (as
// served) differs from the one it saw before, it sends a NOTIFY for that
// zone to every address over UDP and waits for the acknowledgement (a
// reply with the same ID and opcode), retrying a few times (§3.6). Zones
// present at start are not announced: a secondary asks for them itself.

const (
	defaultNotifyInterval = time.Second
	notifyTries           = 5
	notifyTimeout         = time.Second
)

// runNotify watches the snapshots until the server shuts down. first is
// the snapshot current when Start ran (nil: none yet): its zones are the
// ones present at start, so that a change made as soon as Start returns
// is announced.
func (s *Server) runNotify(first *zones.Snapshot) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.done
		cancel()
	}()
	tick := time.NewTicker(s.opts.NotifyInterval)
	defer tick.Stop()
	var last *zones.Snapshot
	var serials map[string]*dns.SOA
	if first != nil {
		last, serials = first, servedSOAs(first)
	}
	for {
		if snap := s.h.src.Snapshot(); snap != nil && snap != last {
			cur := servedSOAs(snap)
			if serials != nil {
				for origin, soa := range cur {
					if old, ok := serials[origin]; !ok || old.Serial != soa.Serial {
						for _, to := range s.opts.Notify {
							s.wg.Add(1)
							go s.notify(ctx, soa, to)
						}
					}
				}
			}
			last, serials = snap, cur
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// servedSOAs returns every zone's SOA as the zone answers it (the serial
// of a zone with service names follows its routing), by origin.
func servedSOAs(snap *zones.Snapshot) map[string]*dns.SOA {
	out := make(map[string]*dns.SOA, len(snap.Zones()))
	for _, z := range snap.Zones() {
		soa := z.SOA()
		res := snap.Answer(zones.Question{Name: z.Origin(), Type: dns.TypeSOA, Class: dns.ClassINET})
		if len(res.Answer) == 1 {
			if s, ok := res.Answer[0].(*dns.SOA); ok {
				soa = s
			}
		}
		out[z.Origin()] = soa
	}
	return out
}

// notify sends one zone's NOTIFY to one secondary until it is acknowledged
// or the tries run out, and logs the outcome.
func (s *Server) notify(ctx context.Context, soa *dns.SOA, to netip.AddrPort) {
	defer s.wg.Done()
	origin, serial := soa.Hdr.Name, soa.Serial
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	m := new(dns.Msg)
	m.SetNotify(origin)
	m.Id = binary.BigEndian.Uint16(idb[:])
	m.Answer = []dns.RR{soa} // the new serial, as a hint (§3.7)
	wire, err := m.Pack()
	if err != nil {
		s.log.Warn("notify not sent", "zone", origin, "to", to.String(), "err", err)
		return
	}
	var lastErr error
	for try := 1; try <= notifyTries; try++ {
		if lastErr = notifyOnce(ctx, wire, m.Id, to); lastErr == nil {
			s.log.Info("notify acknowledged", "zone", origin, "serial", serial, "to", to.String(), "tries", try)
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	s.log.Warn("notify not acknowledged", "zone", origin, "serial", serial, "to", to.String(), "tries", notifyTries, "err", lastErr)
}

func notifyOnce(ctx context.Context, wire []byte, id uint16, to netip.AddrPort) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", to.String())
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(notifyTimeout))
	if _, err := c.Write(wire); err != nil {
		return err
	}
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		r := new(dns.Msg)
		if r.Unpack(buf[:n]) == nil && r.Id == id && r.Response && r.Opcode == dns.OpcodeNotify {
			if r.Rcode != dns.RcodeSuccess {
				return &notifyError{rcode: r.Rcode}
			}
			return nil
		}
	}
}

type notifyError struct{ rcode int }

func (e *notifyError) Error() string { return "answered " + dns.RcodeToString[e.rcode] }
