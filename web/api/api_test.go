package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestDurationWire(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		wire string
	}{{30 * time.Second, `"30s"`}, {90 * time.Second, `"1m30s"`}, {0, `"0s"`}, {1500 * time.Millisecond, `"1.5s"`}} {
		b, err := json.Marshal(Duration(c.d))
		if err != nil || string(b) != c.wire {
			t.Errorf("marshal %v = %s, %v; want %s", c.d, b, err, c.wire)
		}
		var d Duration
		if err := json.Unmarshal([]byte(c.wire), &d); err != nil || time.Duration(d) != c.d {
			t.Errorf("unmarshal %s = %v, %v", c.wire, d, err)
		}
	}
	for _, bad := range []string{`"30"`, `30000000000`, `"soon"`} {
		var d Duration
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
}

func TestTimeWire(t *testing.T) {
	la := time.FixedZone("PST", -8*3600)
	tm := time.Date(2026, 11, 30, 4, 5, 6, 0, la)
	b, _ := json.Marshal(At(tm))
	if string(b) != `"2026-11-30T12:05:06Z"` {
		t.Errorf("marshal = %s, want UTC RFC 3339", b)
	}
	b, _ = json.Marshal(At(tm.Add(250 * time.Millisecond)))
	if string(b) != `"2026-11-30T12:05:06.25Z"` {
		t.Errorf("marshal with fraction = %s", b)
	}
	b, _ = json.Marshal(Time{})
	if string(b) != "null" {
		t.Errorf("zero = %s, want null", b)
	}
	var got Time
	if err := json.Unmarshal([]byte(`"2026-11-30T13:05:06+01:00"`), &got); err != nil || !got.Equal(tm) || got.Location() != time.UTC {
		t.Errorf("unmarshal = %v, %v", got, err)
	}
	if err := json.Unmarshal([]byte(`null`), &got); err != nil || !got.IsZero() {
		t.Errorf("unmarshal null = %v, %v", got, err)
	}
	if err := json.Unmarshal([]byte(`1764504306`), &got); err == nil {
		t.Error("an integer time was accepted")
	}
	if err := json.Unmarshal([]byte(`"yesterday"`), &got); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("bad time: %v", err)
	}
}

// deadServer is a loopback address nothing listens on.
func deadServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func TestClientTriesServersInTurn(t *testing.T) {
	var gotAuth, gotBody, gotPath string
	ok := server(t, func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.String()
		b := make([]byte, 1024)
		n, _ := r.Body.Read(b)
		gotBody = string(b[:n])
		w.Write([]byte(`{"command":"promote dallas","actor":"alice","index":9,"epoch":0,"applied":"all","entries":[]}`))
	})
	noQuorum := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		w.Write([]byte(`{"error":"no_quorum","message":"no quorum"}`))
	})
	c := &Client{Servers: []string{deadServer(t), noQuorum, ok + "/"}, Token: "tok"}
	r, err := c.Command(context.Background(), "promote", CommandRequest{Site: "dallas"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Index != 9 || r.Applied != "all" || gotAuth != "Bearer tok" || gotPath != "/api/v1/promote?wait=all" || gotBody != `{"site":"dallas"}` {
		t.Errorf("result %+v; server saw %q %q %q", r, gotAuth, gotPath, gotBody)
	}

	// A refusal is final: the next server is not asked.
	asked := false
	refuse := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(409)
		w.Write([]byte(`{"error":"refused","message":"promote dallas refused: x","check":"replication","observed":"lag=300s"}`))
	})
	next := server(t, func(w http.ResponseWriter, r *http.Request) { asked = true })
	_, err = (&Client{Servers: []string{refuse, next}}).Command(context.Background(), "promote", CommandRequest{Site: "dallas"}, false)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Body.Check != "replication" || ae.Body.Observed != "lag=300s" || asked {
		t.Errorf("refusal: %v (%+v), next asked %v", err, ae, asked)
	}

	// Nobody reachable.
	_, err = (&Client{Servers: []string{deadServer(t), deadServer(t)}}).Status(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("unreachable: %v", err)
	}
	// Every server without quorum: the last 503 is returned.
	_, err = (&Client{Servers: []string{noQuorum, noQuorum}}).Nodes(context.Background())
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Errorf("all 503: %v", err)
	}
	// A reply that is not the API's JSON.
	html := server(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) })
	if _, err := (&Client{Servers: []string{html}}).History(context.Background(), 5, 3); err == nil || !strings.Contains(err.Error(), "not the expected JSON") {
		t.Errorf("html reply: %v", err)
	}
	plain := server(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "teapot here", 418) })
	if _, err := (&Client{Servers: []string{plain}}).Status(context.Background()); !errors.As(err, &ae) || ae.Status != 418 || ae.Body.Message != "teapot here" {
		t.Errorf("plain error: %v", err)
	}
}
