package dnsserver

// cache holds packed replies for one worker goroutine: no lock, no sharing.
//
// A reply is stored as built for a query with ID 0, RD and CD clear and the
// lower-case qname; a hit copies it and patches the ID, RD, CD and the
// qname's case. The key is everything else the reply bytes depend on:
//
//	lower-case qname wire | qtype | qclass | edns flags | size limit
//
// where the size limit is 0 for the full reply (what TCP, and every UDP
// client it fits, gets) and the UDP limit for a reply fitted to it
// (additional records dropped or TC). The snapshot version is not in the
// key: the whole cache is dropped when the version changes.
//
// followed, for a name whose answer depends on services' routes (see
// zones.Snapshot.Dynamic), by the client's route index of each of those
// services, one byte each. The snapshot version (which changes with every
// routing view, so it stands for the routing version) is not in the key:
// the whole cache is dropped when the version changes. Replies are stored
// without the ECS option: emit appends it with the query's FAMILY, SOURCE
// PREFIX-LENGTH and ADDRESS and this query's scope.
//
// Memory is bounded by entry count and by bytes; when either is full a
// random entry is evicted for each insertion, so a flood of random names
// churns the cache without growing it.
type cache struct {
	version uint64
	m       map[string]entry
	bytes   int

	maxEntries int
	maxBytes   int
}

type entry struct {
	reply []byte
	zone  uint16 // zone index for metrics
	rcode uint8  // rcode index for metrics
	tc    bool
	opt   uint16 // offset of the OPT RR's RDLENGTH in reply, 0 = no OPT
}

const (
	defaultCacheEntries = 1 << 16
	defaultCacheBytes   = 32 << 20
	// maxCachedReply: larger replies (TCP only) are rebuilt every time.
	maxCachedReply = 16 << 10

	// key layout after the qname
	keyFlagEDNS = 1 << 0
	keyFlagDO   = 1 << 1
	keyFlagNSID = 1 << 2
	keyTail     = 2 + 2 + 1 + 2
	maxDeps     = 32 // services one answer may depend on and still be cached
	maxKeyLen   = maxNameLen + keyTail + maxDeps
)

func newCache(entries, bytes int) *cache {
	return &cache{m: make(map[string]entry), maxEntries: entries, maxBytes: bytes}
}

// check drops everything when the snapshot version changed.
func (c *cache) check(version uint64) {
	if c.version != version {
		clear(c.m)
		c.bytes = 0
		c.version = version
	}
}

func (c *cache) get(key []byte) (entry, bool) {
	e, ok := c.m[string(key)] // no allocation: the compiler does not copy
	return e, ok
}

func (c *cache) put(key []byte, e entry) {
	if len(e.reply) > maxCachedReply {
		return
	}
	if old, ok := c.m[string(key)]; ok {
		c.bytes -= len(old.reply)
		delete(c.m, string(key))
	}
	for len(c.m) > 0 && (len(c.m) >= c.maxEntries || c.bytes+len(e.reply) > c.maxBytes) {
		for k, v := range c.m { // map iteration starts at a random place
			c.bytes -= len(v.reply)
			delete(c.m, k)
			break
		}
	}
	c.m[string(key)] = e
	c.bytes += len(e.reply)
}
