package health

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

func TestSyncHTTP(t *testing.T) {
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body.Load())
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/replication"
	queue := fmt.Sprintf("type = \"http\"\nurl = %q\njson_path = \"copy_queue_length\"\nop = \"<=\"\nvalue = 0\n", url)

	steps := []struct {
		name, check, body string
		err, detail       string
	}{
		{"queue not empty", queue, `{"copy_queue_length": 12}`, "copy_queue_length = 12, want <= 0", ""},
		{"queue drained", queue, `{"copy_queue_length": 0}`, "", "copy_queue_length = 0 (<= 0)"},
		{"lag within bound", fmt.Sprintf("type = \"http\"\nurl = %q\njson_path = \"dbs[1].replication_lag_seconds\"\nop = \"<=\"\nvalue = 30\n", url),
			`{"dbs": [{"replication_lag_seconds": 900}, {"replication_lag_seconds": 4.5}]}`, "", "dbs[1].replication_lag_seconds = 4.5 (<= 30)"},
		{"state healthy", fmt.Sprintf("type = \"http\"\nurl = %q\njson_path = \"state\"\nop = \"==\"\nvalue = \"healthy\"\n", url),
			`{"state": "healthy"}`, "", `state = "healthy" (== "healthy")`},
		{"state seeding", fmt.Sprintf("type = \"http\"\nurl = %q\njson_path = \"state\"\nop = \"==\"\nvalue = \"healthy\"\n", url),
			`{"state": "seeding"}`, `state = "seeding", want == "healthy"`, ""},
		{"bool", fmt.Sprintf("type = \"http\"\nurl = %q\njson_path = '$.status[\"db.main\"].mounted'\nop = \"!=\"\nvalue = false\n", url),
			`{"status": {"db.main": {"mounted": true}}}`, "", ""},
		{"missing key", queue, `{"copyqueue": 0}`, `copy_queue_length: no key "copy_queue_length"`, ""},
		{"wrong type", queue, `{"copy_queue_length": "0"}`, `copy_queue_length = "0": not a number`, ""},
		{"not JSON", queue, `<html>`, "body is not JSON", ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			body.Store(s.body)
			r := runProbe(t, parseSync(t, s.check), true, srv.Listener.Addr().String())
			wantResult(t, r, s.err)
			if r.Detail != s.detail && s.detail != "" {
				t.Errorf("detail = %q, want %q", r.Detail, s.detail)
			}
		})
	}
}

func TestSyncExec(t *testing.T) {
	in := script(t, "echo 'copy queue 0'\n")
	out := script(t, "echo 'copy queue 17'\nexit 1\n")
	r := runProbe(t, parseSync(t, fmt.Sprintf("type = \"exec\"\ncommand = [%q]\n", in)), true, "127.0.0.1:0")
	wantResult(t, r, "")
	if r.Detail != "copy queue 0" {
		t.Errorf("detail = %q", r.Detail)
	}
	r = runProbe(t, parseSync(t, fmt.Sprintf("type = \"exec\"\ncommand = [%q]\n", out)), true, "127.0.0.1:0")
	wantResult(t, r, "exit status 1: copy queue 17")
}
