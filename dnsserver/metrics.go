package dnsserver

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// The query path counts into plain atomic counters owned by one worker (one
// UDP reader goroutine, or the shared TCP set); the collector sums them on
// scrape. No CounterVec lookup, no map, no lock per query.

type proto uint8

const (
	protoUDP proto = iota
	protoTCP
)

func (p proto) String() string {
	if p == protoTCP {
		return "tcp"
	}
	return "udp"
}

// Query types with their own label value; everything else is "other".
var countedTypes = [...]uint16{
	dns.TypeA, dns.TypeNS, dns.TypeCNAME, dns.TypeSOA, dns.TypePTR,
	dns.TypeMX, dns.TypeTXT, dns.TypeAAAA, dns.TypeSRV, dns.TypeNAPTR,
	dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY, dns.TypeNSEC3,
	dns.TypeNSEC3PARAM, dns.TypeTLSA, dns.TypeSVCB, dns.TypeHTTPS,
	dns.TypeCAA, dns.TypeIXFR, dns.TypeAXFR, dns.TypeANY,
}

const (
	nQtypes    = len(countedTypes) + 1 // + "other"
	qtypeOther = uint8(nQtypes - 1)
)

// qtypeIndex maps a type number to its label index.
var qtypeIndex = func() (t [65536]uint8) {
	for i := range t {
		t[i] = qtypeOther
	}
	for i, q := range countedTypes {
		t[q] = uint8(i)
	}
	return t
}()

// Rcodes with their own label value: 0..10 and BADVERS; others "other".
const (
	nRcodes     = 13
	rcodeBadIdx = 11
	rcodeOther  = 12
)

func rcodeIndex(rcode int) uint8 {
	switch {
	case rcode >= 0 && rcode <= 10:
		return uint8(rcode)
	case rcode == dns.RcodeBadVers:
		return rcodeBadIdx
	}
	return rcodeOther
}

func rcodeName(i int) string {
	switch {
	case i <= 10:
		return dns.RcodeToString[i]
	case i == rcodeBadIdx:
		return "BADVERS"
	}
	return "other"
}

// Zones get small indices the first time they answer. Index 0 is "none"
// (no zone: REFUSED, CHAOS, errors); beyond maxZones every zone is "other".
const (
	maxZones  = 1024
	zoneNone  = 0
	zoneOther = 1
)

type zoneNames struct {
	mu    sync.Mutex
	index map[string]uint16
	names atomic.Pointer[[]string] // copy on write, read by the collector
}

func newZoneNames() *zoneNames {
	z := &zoneNames{index: map[string]uint16{"": zoneNone}}
	names := []string{"none", "other"}
	z.names.Store(&names)
	return z
}

// intern returns the index of zone (an origin; "" for none). It runs on the
// cache-miss path only.
func (z *zoneNames) intern(zone string) uint16 {
	z.mu.Lock()
	defer z.mu.Unlock()
	if i, ok := z.index[zone]; ok {
		return i
	}
	old := *z.names.Load()
	if len(old) >= maxZones {
		return zoneOther
	}
	i := uint16(len(old))
	names := append(old[:len(old):len(old)], zone)
	z.index[zone] = i
	z.names.Store(&names)
	return i
}

// Request duration buckets, seconds.
var durationBuckets = [...]float64{
	5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2, 0.1, 1,
}

type zoneCounters [nQtypes][nRcodes]atomic.Uint64

// counters is one worker's set. Writers: the owning goroutine(s); reader:
// the collector.
type counters struct {
	proto     proto
	zones     [maxZones]atomic.Pointer[zoneCounters]
	truncated atomic.Uint64
	malformed atomic.Uint64
	panics    atomic.Uint64
	transfers atomic.Uint64

	histCount   atomic.Uint64
	histSumNano atomic.Uint64
	histBuckets [len(durationBuckets)]atomic.Uint64
}

func (c *counters) query(zone uint16, qtype uint16, rcode uint8) {
	zc := c.zones[zone].Load()
	if zc == nil {
		zc = c.newZone(zone)
	}
	zc[qtypeIndex[qtype]][rcode].Add(1)
}

func (c *counters) newZone(zone uint16) *zoneCounters {
	zc := new(zoneCounters)
	if !c.zones[zone].CompareAndSwap(nil, zc) {
		zc = c.zones[zone].Load()
	}
	return zc
}

// observe records n requests that each took d.
func (c *counters) observe(d time.Duration, n int) {
	if n <= 0 {
		return
	}
	s := d.Seconds()
	for i, b := range durationBuckets {
		if s <= b {
			c.histBuckets[i].Add(uint64(n))
			break
		}
	}
	c.histCount.Add(uint64(n))
	c.histSumNano.Add(uint64(d.Nanoseconds()) * uint64(n))
}

// collector exposes the sum of every worker's counters.
type collector struct {
	mu       sync.Mutex // guards sets (appended at Start)
	sets     []*counters
	names    *zoneNames
	tcpConns *atomic.Int64
	tcpRej   *atomic.Uint64
	// replyErrs counts replies that failed to build (set after newCollector).
	replyErrs *atomic.Uint64
	// rrl is the rate limiter whose counts are exported (nil: off).
	rrl *rrl
	// steers are the UDP socket groups, one per listen address, steered or
	// not (set at Start; exported as the sockets each uses).
	steers atomic.Pointer[[]*steer]

	queries, duration, truncated, malformed, panics, conns, rejected, replyErrors, transfers, rrlDropped, rrlSlipped, steered *prometheus.Desc
}

func newCollector(names *zoneNames, conns *atomic.Int64, rej *atomic.Uint64) *collector {
	n := func(name string) string { return prometheus.BuildFQName("geodnsd", "dns", name) }
	return &collector{
		names:       names,
		tcpConns:    conns,
		tcpRej:      rej,
		queries:     prometheus.NewDesc(n("queries_total"), "DNS queries answered, by answering zone, query type, response code and transport.", []string{"zone", "qtype", "rcode", "proto"}, nil),
		duration:    prometheus.NewDesc(n("request_duration_seconds"), "Time from receiving a request to sending its reply (per receive batch on UDP).", []string{"proto"}, nil),
		truncated:   prometheus.NewDesc(n("responses_truncated_total"), "UDP responses sent with the TC bit.", nil, nil),
		malformed:   prometheus.NewDesc(n("malformed_total"), "Requests dropped as unusable or answered FORMERR.", nil, nil),
		panics:      prometheus.NewDesc(n("panics_total"), "Panics recovered on the packet path.", nil, nil),
		conns:       prometheus.NewDesc(n("tcp_connections"), "Open DNS TCP connections.", nil, nil),
		rejected:    prometheus.NewDesc(n("tcp_rejected_total"), "DNS TCP connections closed at once because of the connection limit.", nil, nil),
		rrlDropped:  prometheus.NewDesc(n("rrl_dropped_total"), "UDP responses dropped by response rate limiting.", nil, nil),
		rrlSlipped:  prometheus.NewDesc(n("rrl_slipped_total"), "UDP responses sent truncated (TC) instead of dropped by response rate limiting.", nil, nil),
		transfers:   prometheus.NewDesc(n("transfers_total"), "Zone transfers (AXFR, and IXFR answered in full) sent to allowed clients.", nil, nil),
		replyErrors: prometheus.NewDesc(n("reply_errors_total"), "Replies that could not be built and were answered SERVFAIL (a bug; the first is logged).", nil, nil),
		steered:     prometheus.NewDesc(n("udp_sockets_steered"), "UDP sockets of a listen address that datagrams are steered to now (1 while one reader keeps up; up to sockets_per_address).", []string{"listen"}, nil),
	}
}

func (c *collector) setSteers(st []*steer) { c.steers.Store(&st) }

func (c *collector) add(set *counters) {
	c.mu.Lock()
	c.sets = append(c.sets, set)
	c.mu.Unlock()
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queries, c.duration, c.truncated, c.malformed, c.panics, c.conns, c.rejected, c.replyErrors, c.transfers, c.rrlDropped, c.rrlSlipped, c.steered} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if st := c.steers.Load(); st != nil {
		for _, g := range *st {
			ch <- prometheus.MustNewConstMetric(c.steered, prometheus.GaugeValue, float64(g.used.Load()), g.addr.String())
		}
	}
	c.mu.Lock()
	sets := append([]*counters(nil), c.sets...)
	c.mu.Unlock()
	names := *c.names.names.Load()

	type qkey struct {
		zone         uint16
		qtype, rcode uint8
		proto        proto
	}
	queries := map[qkey]uint64{}
	var truncated, malformed, panics, transfers uint64
	type hist struct {
		count   uint64
		sum     float64
		buckets [len(durationBuckets)]uint64
	}
	var hists [2]hist
	for _, s := range sets {
		for z := range names {
			zc := s.zones[z].Load()
			if zc == nil {
				continue
			}
			for t := range zc {
				for r := range zc[t] {
					if v := zc[t][r].Load(); v != 0 {
						queries[qkey{uint16(z), uint8(t), uint8(r), s.proto}] += v
					}
				}
			}
		}
		truncated += s.truncated.Load()
		malformed += s.malformed.Load()
		panics += s.panics.Load()
		transfers += s.transfers.Load()
		h := &hists[s.proto]
		h.count += s.histCount.Load()
		h.sum += float64(s.histSumNano.Load()) / 1e9
		for i := range h.buckets {
			h.buckets[i] += s.histBuckets[i].Load()
		}
	}
	for k, v := range queries {
		qt := "other"
		if int(k.qtype) < len(countedTypes) {
			qt = dns.TypeToString[countedTypes[k.qtype]]
		}
		ch <- prometheus.MustNewConstMetric(c.queries, prometheus.CounterValue, float64(v),
			names[k.zone], qt, rcodeName(int(k.rcode)), k.proto.String())
	}
	for p := range hists {
		h := &hists[p]
		b := make(map[float64]uint64, len(durationBuckets))
		var cum uint64
		for i, le := range durationBuckets {
			cum += h.buckets[i]
			b[le] = cum
		}
		ch <- prometheus.MustNewConstHistogram(c.duration, h.count, h.sum, b, proto(p).String())
	}
	ch <- prometheus.MustNewConstMetric(c.truncated, prometheus.CounterValue, float64(truncated))
	ch <- prometheus.MustNewConstMetric(c.malformed, prometheus.CounterValue, float64(malformed))
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(panics))
	ch <- prometheus.MustNewConstMetric(c.transfers, prometheus.CounterValue, float64(transfers))
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(c.tcpConns.Load()))
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(c.tcpRej.Load()))
	var replyErrs uint64
	if c.replyErrs != nil {
		replyErrs = c.replyErrs.Load()
	}
	ch <- prometheus.MustNewConstMetric(c.replyErrors, prometheus.CounterValue, float64(replyErrs))
	var dropped, slipped uint64
	if c.rrl != nil {
		dropped, slipped = c.rrl.dropped.Load(), c.rrl.slipped.Load()
	}
	ch <- prometheus.MustNewConstMetric(c.rrlDropped, prometheus.CounterValue, float64(dropped))
	ch <- prometheus.MustNewConstMetric(c.rrlSlipped, prometheus.CounterValue, float64(slipped))
}
