package health

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newHTTPBackend is a plain HTTP server with the paths the cases use.
func newHTTPBackend(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Seen-Host", r.Host)
		fmt.Fprintf(w, "ok host=%s method=%s token=%s\n", r.Host, r.Method, r.Header.Get("X-Token"))
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "cas.example.com" {
			http.Error(w, "wrong host "+r.Host, http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ok", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		// An endless body: the probe must stop reading at max_body.
		chunk := []byte(strings.Repeat("x", 32<<10))
		w.Write([]byte("BEGIN "))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTP(t *testing.T) {
	srv := newHTTPBackend(t)
	addr := srv.Listener.Addr().String()
	cases := []struct {
		name, check string
		err         string // "" = up
	}{
		{"ok", `type = "http"` + "\npath = \"/ok\"", ""},
		{"host header set apart from the probed address", `type = "http"` + "\nhost = \"cas.example.com\"\npath = \"/host\"", ""},
		{"host header missing", `type = "http"` + "\npath = \"/host\"", "status 421, want 2xx"},
		{"500", `type = "http"` + "\npath = \"/500\"", "status 500, want 2xx"},
		{"status list", `type = "http"` + "\npath = \"/204\"\nstatus = [204]", ""},
		{"status not listed", `type = "http"` + "\npath = \"/ok\"\nstatus = [204]", "status 200, want 204"},
		{"redirect not followed", `type = "http"` + "\npath = \"/redirect\"", "status 302, want 2xx (redirect to /ok, not followed)"},
		{"redirect followed", `type = "http"` + "\npath = \"/redirect\"\nfollow_redirects = true", ""},
		{"body matches", `type = "http"` + "\npath = \"/ok\"\nbody_regexp = \"^ok host=\"", ""},
		{"body does not match", `type = "http"` + "\npath = \"/ok\"\nbody_regexp = \"^healthy\"", `body does not match "^healthy"`},
		{"header matches", `type = "http"` + "\npath = \"/ok\"\nheader_match = { Content-Type = \"^text/plain\" }", ""},
		{"header does not match", `type = "http"` + "\npath = \"/ok\"\nheader_match = { Content-Type = \"json\" }", `header Content-Type: "text/plain" does not match "json"`},
		{"header missing", `type = "http"` + "\npath = \"/ok\"\nheader_match = { X-Missing = \".\" }", "no X-Missing header"},
		{"method and request headers", `type = "http"` + "\npath = \"/ok\"\nmethod = \"post\"\nheaders = { X-Token = \"abc\" }\nbody_regexp = \"method=POST token=abc\"", ""},
		{"slow beyond the timeout", `type = "http"` + "\npath = \"/slow\"\ninterval = \"1s\"\ntimeout = \"300ms\"", "timed out"},
		{"huge body is capped", `type = "http"` + "\npath = \"/huge\"\nbody_regexp = \"^BEGIN x+$\"\nmax_body = 1000", ""},
		{"connection refused", `type = "http"` + "\npath = \"/ok\"\nport = 1", "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, tc.check)
			a := addr
			if c.Port == 1 {
				a = "127.0.0.1:1"
			}
			r := runProbe(t, c, false, a)
			wantResult(t, r, tc.err)
		})
	}
}

func TestHTTPPhases(t *testing.T) {
	srv := newHTTPBackend(t)
	r := runProbe(t, parseCheck(t, "type = \"http\"\npath = \"/ok\""), false, srv.Listener.Addr().String())
	wantResult(t, r, "")
	got := map[string]bool{}
	for _, p := range r.Phases {
		got[p.Name] = true
	}
	if !got["connect"] || !got["first_byte"] || got["tls"] {
		t.Errorf("phases = %+v, want connect and first_byte, no tls", r.Phases)
	}
}

func TestHTTPS(t *testing.T) {
	p := newPKI(t)
	good := p.valid(t, "cas.example.com")
	expired := p.leaf(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), false, "cas.example.com")
	soon := p.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(35*time.Hour+30*time.Minute), false, "cas.example.com")
	clientCert, clientKey := p.files(t, p.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), true, "prober"), "client")

	// One server per certificate; each records the SNI it was asked for.
	start := func(cert tls.Certificate, requireClient bool) (addr string, sni *atomic.Value) {
		sni = &atomic.Value{}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Host != "cas.example.com" {
				http.Error(w, "wrong host", http.StatusMisdirectedRequest)
				return
			}
			fmt.Fprintln(w, "ok")
		}))
		srv.TLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				sni.Store(h.ServerName)
				return nil, nil
			},
		}
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are the point
		if requireClient {
			srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
			srv.TLS.ClientCAs = p.pool()
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String(), sni
	}
	goodAddr, goodSNI := start(good, false)
	wrongAddr, _ := start(p.valid(t, "other.example.com"), false)
	expiredAddr, _ := start(expired, false)
	soonAddr, _ := start(soon, false)
	mtlsAddr, _ := start(good, true)

	ca := fmt.Sprintf("ca_file = %q\n", p.caFile)
	base := "type = \"https\"\nhost = \"cas.example.com\"\n"
	cases := []struct {
		name, check, addr string
		err, warn         string
	}{
		{"verified against the test CA", base + ca, goodAddr, "", ""},
		{"system roots do not know the CA", base, goodAddr, "certificate signed by unknown authority", ""},
		{"insecure only when said", base + "insecure = true\n", goodAddr, "", ""},
		{"wrong host name", base + ca, wrongAddr, "not cas.example.com", ""},
		{"server_name overrides host for TLS", base + ca + "server_name = \"other.example.com\"\n", wrongAddr, "", ""},
		{"expired", base + ca, expiredAddr, "certificate has expired", ""},
		{"expiring within min_validity", base + ca + "min_validity = \"72h\"\n", soonAddr, "within min_validity 3d", ""},
		{"expiring within warn_validity", base + ca + "warn_validity = \"72h\"\n", soonAddr, "", "expires in 35h"},
		{"client certificate", base + ca + fmt.Sprintf("cert_file = %q\nkey_file = %q\n", clientCert, clientKey), mtlsAddr, "", ""},
		{"client certificate missing", base + ca, mtlsAddr, "certificate required", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runProbe(t, parseCheck(t, tc.check), false, tc.addr)
			wantResult(t, r, tc.err)
			if !strings.Contains(r.Warning, tc.warn) || (tc.warn == "" && r.Warning != "") {
				t.Errorf("warning = %q, want %q", r.Warning, tc.warn)
			}
		})
	}
	if got, _ := goodSNI.Load().(string); got != "cas.example.com" {
		t.Errorf("SNI = %q, want cas.example.com (the probed address is 127.0.0.1)", got)
	}
	r := runProbe(t, parseCheck(t, base+ca), false, goodAddr)
	names := map[string]bool{}
	for _, ph := range r.Phases {
		names[ph.Name] = true
	}
	if !names["connect"] || !names["tls"] || !names["first_byte"] {
		t.Errorf("phases = %+v, want connect, tls and first_byte", r.Phases)
	}
}
