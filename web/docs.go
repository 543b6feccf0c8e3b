package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/web/api"
)

// doc is one rendered document, served from memory.
type doc struct {
	body  []byte
	etag  string // a strong validator: quoted hex of the body's sha256 prefix
	ctype string
	// gz is body gzipped, with its own validator (another representation,
	// RFC 9110 §8.8.3); nil when compression does not pay.
	gz     []byte
	gzEtag string
}

func newDoc(body []byte, ctype string) doc {
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:12])
	d := doc{body: body, etag: `"` + tag + `"`, ctype: ctype}
	var b bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&b)
	zw.Write(body)
	zw.Close()
	gzipWriters.Put(zw)
	if b.Len() < len(body)*9/10 {
		d.gz, d.gzEtag = b.Bytes(), `"`+tag+`-gz"`
	}
	return d
}

// gzipWriters holds gzip writers at BestCompression: each is ~1 MB of
// compressor state, reused across renders.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestCompression)
	return zw
}}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (RFC 9110 §12.5.3: listed without q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// Document names, used as the "document" label of the metrics.
const (
	docStatus       = "status"
	docPage         = "page"
	docSPStatus     = "statuspage_status"
	docSPSummary    = "statuspage_summary"
	docSPComponents = "statuspage_components"
	docSPIncidents  = "statuspage_incidents"
	docSPUnresolved = "statuspage_unresolved"
	docSPMaint      = "statuspage_maintenances"
)

// rendered is the current view and the public documents served for it.
// view, fstatus, status and history always reflect the latest view seen;
// docs may have been rendered from an earlier one that differed only in
// volatile fields (see Options.DocRefresh).
type rendered struct {
	changed <-chan struct{} // closed when the view behind these is outdated
	view    *View
	fstatus *failover.Status // nil when the view has no state
	status  api.Status
	history []api.HistoryEntry // the whole history, newest first
	docs    map[string]doc
	// key is the fingerprint of what docs show, volatile fields left out
	// (fingerprint); refreshAt is when docs were rendered (Options.Now)
	// plus DocRefresh, never when DocRefresh < 0.
	key       [sha256.Size]byte
	refreshAt time.Time
}

// renderer renders the documents once per state change a reader cares
// about: the first request after the backend's Changed channel closes reads
// the new view and fingerprints it; when only volatile fields moved and
// the documents are younger than DocRefresh it keeps them (same bytes, same
// ETags), otherwise it renders them all again. A request after refreshAt
// renders them again even without a change, so no document shows times
// older than DocRefresh. Other requests wait for it; every other request
// is served from memory.
type renderer struct {
	o   *Options
	mu  sync.Mutex // held while rendering
	cur atomic.Pointer[rendered]
	m   *metrics
}

// get returns the documents for the current view.
func (r *renderer) get() *rendered {
	if c := r.cur.Load(); r.fresh(c) {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cur.Load()
	if r.fresh(c) {
		return c
	}
	c = r.update(c)
	r.cur.Store(c)
	return c
}

func (r *renderer) fresh(c *rendered) bool {
	return c != nil && !closed(c.changed) && r.o.now().Before(c.refreshAt)
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// update reads the backend's current view and returns it with documents:
// prev's when they still show it (nothing but volatile fields moved, within
// DocRefresh), else new ones.
func (r *renderer) update(prev *rendered) *rendered {
	o := r.o
	ch := o.Backend.Changed() // before View: a publish in between closes ch
	v := o.Backend.View()
	now := o.now().UTC()
	out := &rendered{changed: ch, view: v}
	var st failover.Status
	if v.State != nil {
		st = v.State.Status()
		out.fstatus = &st
	}
	out.status = statusOf(v, &st, o.Node, o.HistoryLen, now)
	for i := len(st.History) - 1; i >= 0; i-- {
		out.history = append(out.history, entryOf(st.History[i]))
	}
	out.key = fingerprint(&out.status, out.history)
	if prev != nil && prev.key == out.key && now.Before(prev.refreshAt) && o.DocRefresh > 0 {
		out.docs, out.refreshAt = prev.docs, prev.refreshAt
		r.m.renderSkips.Inc()
		return out
	}
	var old map[string]doc
	if prev != nil {
		old = prev.docs
	}
	out.docs = r.render(&out.status, out.history, old)
	out.refreshAt = now.Add(o.DocRefresh)
	if o.DocRefresh < 0 {
		out.refreshAt = time.Unix(1<<62, 0) // only a state change renders again
	}
	r.m.renders.Inc()
	return out
}

// render renders every public document from status and the whole history
// (newest first). A document whose bytes equal its old rendering keeps the
// old doc (its compressed form is not made again).
func (r *renderer) render(status *api.Status, history []api.HistoryEntry, old map[string]doc) map[string]doc {
	o := r.o
	docs := map[string]doc{}
	put := func(name string, body []byte, ctype string) {
		if d, ok := old[name]; ok && d.ctype == ctype && bytes.Equal(d.body, body) {
			docs[name] = d
			return
		}
		docs[name] = newDoc(body, ctype)
	}
	putJSON := func(name string, v any) {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			// Only plain values are rendered: this cannot happen.
			panic(err)
		}
		put(name, append(b, '\n'), "application/json; charset=utf-8")
	}
	putJSON(docStatus, status)

	sp := statuspageOf(status, history, o.PageName, o.PageURL)
	putJSON(docSPStatus, spStatusDoc{Page: sp.page, Status: sp.status})
	putJSON(docSPComponents, spComponentsDoc{Page: sp.page, Components: sp.components})
	putJSON(docSPIncidents, spIncidentsDoc{Page: sp.page, Incidents: sp.incidents})
	putJSON(docSPUnresolved, spIncidentsDoc{Page: sp.page, Incidents: sp.unresolved()})
	putJSON(docSPMaint, spMaintenancesDoc{Page: sp.page, ScheduledMaintenances: []any{}})
	putJSON(docSPSummary, spSummaryDoc{Page: sp.page, Components: sp.components, Incidents: sp.unresolved(),
		ScheduledMaintenances: []any{}, Status: sp.status})

	sites := map[string]api.Site{}
	for _, s := range status.Sites {
		sites[s.Name] = s
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pageData{Title: o.PageName, Refresh: int(o.PageRefresh / time.Second),
		S: status, Sites: sites}); err != nil {
		buf.Reset()
		buf.WriteString("<!doctype html><title>error</title><p>status page: " + html.EscapeString(err.Error()))
		o.Logger.Error("render status page", "err", err)
	}
	put(docPage, buf.Bytes(), "text/html; charset=utf-8")
	return docs
}

// serveDoc serves one public document with its validators: ETag (and 304
// when If-None-Match names it, RFC 9110 §13.1.2), Cache-Control max-age=5,
// CORS open to every origin (it holds no secret).
func (r *renderer) serveDoc(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		d := r.get().docs[name]
		body, etag := d.body, d.etag
		h := w.Header()
		if d.gz != nil && acceptsGzip(req) {
			body, etag = d.gz, d.gzEtag
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("ETag", etag)
		h.Set("Vary", "Accept-Encoding")
		h.Set("Cache-Control", "public, max-age=5")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "ETag")
		if etagMatch(req.Header.Get("If-None-Match"), etag) {
			h.Del("Content-Encoding")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", d.ctype)
		h.Set("Content-Length", strconv.Itoa(len(body)))
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(body)
	}
}

// etagMatch implements If-None-Match's weak comparison (RFC 9110 §13.1.2):
// "*" or any listed tag equal to etag, W/ prefixes ignored.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
