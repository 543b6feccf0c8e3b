package zones

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func zoneText(origin string, serial int, addr string) string {
	return fmt.Sprintf("$TTL 60\n@ SOA ns.%[1]s h.%[1]s %[2]d 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nwww A %[3]s\n", origin, serial, addr)
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

type storeFixture struct {
	fs    fstest.MapFS
	reg   *prometheus.Registry
	logs  *bytes.Buffer
	store *Store
}

func newStoreFixture(t *testing.T) *storeFixture {
	t.Helper()
	f := &storeFixture{
		fs: fstest.MapFS{
			"zones/a.test.zone":     file(zoneText("a.test.", 1, "192.0.2.10")),
			"zones/b.zone":          file("$ORIGIN b.test.\n" + zoneText("b.test.", 1, "192.0.2.20")),
			"zones/README":          file("not a zone"),
			"zones/.hidden.zone":    file("garbage"),
			"zones/a.test.zone~":    file("garbage"),
			"zones/#a.test.zone#":   file("garbage"),
			"zones/sub/inner.zone":  file("garbage"),
			"elsewhere/x.test.zone": file("garbage"),
		},
		reg:  prometheus.NewRegistry(),
		logs: &bytes.Buffer{},
	}
	f.store = NewStore(StoreOptions{
		FS: f.fs, Dir: "zones", Registry: f.reg,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Now:    func() time.Time { return time.Unix(1700000000, 0) },
	})
	return f
}

func (f *storeFixture) www(t *testing.T, zone string) string {
	t.Helper()
	r := f.store.Snapshot().Lookup("www."+zone, dns.TypeA, dns.ClassINET, false)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return dns.RcodeToString[r.Rcode]
	}
	return r.Answer[0].(*dns.A).A.String()
}

func TestStore(t *testing.T) {
	f := newStoreFixture(t)
	s := f.store
	if s.Ready() {
		t.Error("ready before the first load")
	}
	if s.Snapshot() == nil || len(s.Snapshot().Zones()) != 0 {
		t.Fatal("initial snapshot not empty")
	}

	// Initial load: the two zone files, nothing else.
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Error("not ready after a good load")
	}
	if got := f.www(t, "a.test."); got != "192.0.2.10" {
		t.Errorf("a.test. www = %s", got)
	}
	if got := f.www(t, "b.test."); got != "192.0.2.20" {
		t.Errorf("b.test. www = %s", got)
	}
	if n := len(s.Snapshot().Zones()); n != 2 {
		t.Errorf("%d zones", n)
	}
	if got := testutil.ToFloat64(s.m.zones); got != 2 {
		t.Errorf("zones metric = %v", got)
	}
	if got := testutil.ToFloat64(s.m.serial.WithLabelValues("a.test.")); got != 1 {
		t.Errorf("serial metric = %v", got)
	}
	if got := testutil.ToFloat64(s.m.lastReload); got != 1700000000 {
		t.Errorf("last reload = %v", got)
	}
	if !strings.Contains(f.logs.String(), `msg="zone loaded" zone=a.test. serial=1 from=0 records=4 file=zones/a.test.zone`) {
		t.Errorf("log: %s", f.logs)
	}

	// Nothing changed: same snapshot, same version.
	v := s.Snapshot().Version()
	if err := s.Load(); err != nil || s.Snapshot().Version() != v {
		t.Errorf("unchanged reload: err %v, version %d -> %d", err, v, s.Snapshot().Version())
	}

	// A changed file is swapped in.
	f.fs["zones/a.test.zone"] = file(zoneText("a.test.", 2, "192.0.2.11"))
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if got := f.www(t, "a.test."); got != "192.0.2.11" {
		t.Errorf("after change www = %s", got)
	}
	if s.Snapshot().Version() <= v {
		t.Error("version did not move")
	}
	if got := testutil.ToFloat64(s.m.serial.WithLabelValues("a.test.")); got != 2 {
		t.Errorf("serial metric = %v", got)
	}

	// A bad change keeps the last good zone, says where, and stays ready.
	f.fs["zones/a.test.zone"] = file(zoneText("a.test.", 3, "192.0.2.12") + "bad CNAME x\nbad A 192.0.2.1\n")
	err := s.Load()
	if err == nil || !strings.Contains(err.Error(), "zones/a.test.zone:7: bad.a.test.: CNAME and other data (A)") {
		t.Fatalf("bad change: %v", err)
	}
	if got := f.www(t, "a.test."); got != "192.0.2.11" {
		t.Errorf("last good not kept: www = %s", got)
	}
	if got := testutil.ToFloat64(s.m.loadErrors.WithLabelValues("a.test.zone")); got != 1 {
		t.Errorf("load_errors = %v", got)
	}
	if got := testutil.ToFloat64(s.m.reloads.WithLabelValues("error")); got != 1 {
		t.Errorf("reloads error = %v", got)
	}
	if !s.Ready() {
		t.Error("not ready though every file loaded once")
	}
	if !strings.Contains(f.logs.String(), "level=ERROR") || !strings.Contains(f.logs.String(), "a.test.zone:7:") {
		t.Errorf("no error log: %s", f.logs)
	}
	// Still bad on the next load (not re-parsed, still reported).
	if err := s.Load(); err == nil {
		t.Error("unchanged bad file no longer reported")
	}

	// A new bad file: not ready, its zone absent, the others served.
	f.fs["zones/c.test.zone"] = file("$TTL 60\n@ A 192.0.2.1\n")
	if err := s.Load(); err == nil || !strings.Contains(err.Error(), "zones/c.test.zone:2: zone c.test. has no SOA") {
		t.Fatalf("new bad file: %v", err)
	}
	if s.Ready() {
		t.Error("ready with a file never loaded")
	}

	// Fix a, remove c and b: back to one zone, ready, metrics follow.
	f.fs["zones/a.test.zone"] = file(zoneText("a.test.", 4, "192.0.2.13"))
	delete(f.fs, "zones/c.test.zone")
	delete(f.fs, "zones/b.zone")
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	if !s.Ready() {
		t.Error("not ready after the fix")
	}
	if got := f.www(t, "b.test."); got != "REFUSED" {
		t.Errorf("removed zone still answers: %s", got)
	}
	if got := f.www(t, "a.test."); got != "192.0.2.13" {
		t.Errorf("fixed zone www = %s", got)
	}
	if got := testutil.ToFloat64(s.m.loadErrors.WithLabelValues("a.test.zone")); got != 0 {
		t.Errorf("load_errors after fix = %v", got)
	}
	if n := testutil.CollectAndCount(s.m.serial); n != 1 {
		t.Errorf("%d serial series", n)
	}

	// Two files with one origin: the first by name wins, the other errs.
	f.fs["zones/z.zone"] = file("$ORIGIN a.test.\n" + zoneText("a.test.", 9, "192.0.2.99"))
	if err := s.Load(); err == nil || !strings.Contains(err.Error(), "zone a.test. already loaded from a.test.zone") {
		t.Fatalf("duplicate origin: %v", err)
	}
	if got := f.www(t, "a.test."); got != "192.0.2.13" {
		t.Errorf("duplicate origin took over: %s", got)
	}
	if s.Ready() {
		t.Error("ready with a conflicting file")
	}
}

func TestStoreZeroOptions(t *testing.T) {
	s := NewStore(StoreOptions{})
	if err := s.Load(); err == nil {
		t.Error("no error for a missing directory")
	}
	if s.Snapshot() == nil || s.Ready() {
		t.Error("bad state after a failed load")
	}
}

func TestStoreMetricsLint(t *testing.T) {
	f := newStoreFixture(t)
	if err := f.store.Load(); err != nil {
		t.Fatal(err)
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestStoreConcurrentReaders swaps between two versions of a two-zone set
// whose serials always move together while readers look up both zones in
// one snapshot: they must never see a mix.
func TestStoreConcurrentReaders(t *testing.T) {
	fsys := fstest.MapFS{}
	set := func(serial int) {
		fsys["d/a.test.zone"] = file(zoneText("a.test.", serial, "192.0.2.1"))
		fsys["d/b.test.zone"] = file(zoneText("b.test.", serial, "192.0.2.2"))
	}
	set(1)
	s := NewStore(StoreOptions{FS: fsys, Dir: "d"})
	if err := s.Load(); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				snap := s.Snapshot()
				a := snap.Lookup("a.test.", dns.TypeSOA, dns.ClassINET, false)
				b := snap.Lookup("b.test.", dns.TypeSOA, dns.ClassINET, false)
				if len(a.Answer) != 1 || len(b.Answer) != 1 ||
					a.Answer[0].(*dns.SOA).Serial != b.Answer[0].(*dns.SOA).Serial {
					bad.Add(1)
				}
			}
		}()
	}
	for i := 2; i < 200; i++ {
		set(i)
		if err := s.Load(); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Fatalf("%d lookups saw a half-loaded set", n)
	}
}

func BenchmarkLookup(b *testing.B) {
	s := testSnapshot(b)
	for _, bc := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"positive", "www.example.com.", dns.TypeA},
		{"nxdomain", "nope.example.com.", dns.TypeA},
		{"wildcard", "x.wild.example.com.", dns.TypeA},
		{"referral", "www.sub.example.com.", dns.TypeA},
		{"mx_additional", "example.com.", dns.TypeMX},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Lookup(bc.qname, bc.qtype, dns.ClassINET, false)
			}
		})
	}
}
