package cluster

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/geodnsd/geodnsd/failover"
)

// TestWireCommandError: a command error forwarded from the leader arrives
// with every field (the drain refusal's route and site included) and still
// wraps ErrRefused.
func TestWireCommandError(t *testing.T) {
	sent := &failover.CommandError{Command: "drain dallas", Refused: true, Msg: "route cas/default would move to losangeles: lag", Route: "cas/default", Site: "losangeles"}
	b, err := json.Marshal(toWire(sent))
	if err != nil {
		t.Fatal(err)
	}
	var w wireError
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	got := w.err()
	var ce *failover.CommandError
	if !errors.As(got, &ce) || *ce != *sent {
		t.Fatalf("received %#v, want %#v", got, sent)
	}
	if !errors.Is(got, failover.ErrRefused) {
		t.Error("received error does not wrap ErrRefused")
	}
}
