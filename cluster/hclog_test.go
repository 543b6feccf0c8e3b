package cluster

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// raft's hclog lines reach the injected slog logger with their level,
// key/value pairs (errors as text) and the names given by With.
func TestHCLogAdapter(t *testing.T) {
	rec := &recorder{min: slog.LevelDebug}
	l := newHCLog(slog.New(rec))
	w := l.With("peer", "ns2")
	w.Warn("failed to heartbeat", "error", errors.New("EOF"))
	l.Trace("chatty")
	l.Error("plain")
	if m := rec.find("failed to heartbeat"); !strings.HasPrefix(m, "WARN") || !strings.Contains(m, "peer=ns2") || !strings.Contains(m, "error=EOF") {
		t.Errorf("warn line: %q", m)
	}
	if m := rec.find("chatty"); !strings.HasPrefix(m, "DEBUG") {
		t.Errorf("trace line: %q", m)
	}
	if m := rec.find("plain"); !strings.HasPrefix(m, "ERROR") || strings.Contains(m, "peer=") {
		t.Errorf("error line: %q (With must not leak into the parent)", m)
	}
	l.Info("initial configuration", "servers", hclog.Fmt("%+v", []int{1, 2}))
	if m := rec.find("initial configuration"); !strings.Contains(m, "servers=") || strings.Contains(m, "%+v") || !strings.Contains(m, "[1 2]") {
		t.Errorf("hclog.Fmt value: %q", m)
	}
	if !l.IsDebug() || l.GetLevel() != hclog.Debug {
		t.Errorf("level: IsDebug %v, GetLevel %v", l.IsDebug(), l.GetLevel())
	}
	if q := newHCLog(slog.New(slog.DiscardHandler)); q.IsError() {
		t.Error("a discarding logger says it logs errors")
	}
}
