package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
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
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	if b.Len() < len(body)*9/10 {
		d.gz, d.gzEtag = b.Bytes(), `"`+tag+`-gz"`
	}
	return d
}

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

func jsonDoc(v any) doc {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only plain values are rendered: this cannot happen.
		panic(err)
	}
	return newDoc(append(b, '\n'), "application/json; charset=utf-8")
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

// rendered is every public document for one view.
type rendered struct {
	changed <-chan struct{} // closed when the view behind these is outdated
	view    *View
	fstatus *failover.Status // nil when the view has no state
	status  api.Status
	history []api.HistoryEntry // the whole history, newest first
	docs    map[string]doc
}

// renderer renders the documents once per state change: the first request
// after the backend's Changed channel closes renders them all again, others
// wait for it; every other request is served from memory.
type renderer struct {
	o   *Options
	mu  sync.Mutex // held while rendering
	cur atomic.Pointer[rendered]
	m   *metrics
}

// get returns the documents for the current view.
func (r *renderer) get() *rendered {
	if c := r.cur.Load(); c != nil && !closed(c.changed) {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.cur.Load(); c != nil && !closed(c.changed) {
		return c
	}
	c := r.render()
	r.cur.Store(c)
	return c
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (r *renderer) render() *rendered {
	o := r.o
	ch := o.Backend.Changed() // before View: a publish in between closes ch
	v := o.Backend.View()
	out := &rendered{changed: ch, view: v, docs: map[string]doc{}}
	var st failover.Status
	if v.State != nil {
		st = v.State.Status()
		out.fstatus = &st
	}
	out.status = statusOf(v, &st, o.Node, o.HistoryLen, o.now().UTC())
	for i := len(st.History) - 1; i >= 0; i-- {
		out.history = append(out.history, entryOf(st.History[i]))
	}
	out.docs[docStatus] = jsonDoc(out.status)

	sp := statuspageOf(&out.status, out.history, o.PageName, o.PageURL)
	out.docs[docSPStatus] = jsonDoc(spStatusDoc{Page: sp.page, Status: sp.status})
	out.docs[docSPComponents] = jsonDoc(spComponentsDoc{Page: sp.page, Components: sp.components})
	out.docs[docSPIncidents] = jsonDoc(spIncidentsDoc{Page: sp.page, Incidents: sp.incidents})
	out.docs[docSPUnresolved] = jsonDoc(spIncidentsDoc{Page: sp.page, Incidents: sp.unresolved()})
	out.docs[docSPMaint] = jsonDoc(spMaintenancesDoc{Page: sp.page, ScheduledMaintenances: []any{}})
	out.docs[docSPSummary] = jsonDoc(spSummaryDoc{Page: sp.page, Components: sp.components, Incidents: sp.unresolved(),
		ScheduledMaintenances: []any{}, Status: sp.status})

	sites := map[string]api.Site{}
	for _, s := range out.status.Sites {
		sites[s.Name] = s
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pageData{Title: o.PageName, Refresh: int(o.PageRefresh / time.Second),
		S: &out.status, Sites: sites}); err != nil {
		buf.Reset()
		buf.WriteString("<!doctype html><title>error</title><p>status page: " + html.EscapeString(err.Error()))
		o.Logger.Error("render status page", "err", err)
	}
	out.docs[docPage] = newDoc(buf.Bytes(), "text/html; charset=utf-8")
	r.m.renders.Inc()
	return out
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
