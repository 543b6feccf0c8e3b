package failover

import (
	"testing"
	"time"
)

// TestFreezeTwiceSaysNoChange: a freeze of a frozen cluster is accepted and
// recorded as no change, from frozen to frozen (not "thawed → frozen").
func TestFreezeTwiceSaysNoChange(t *testing.T) {
	s, err := New(storySpec(Auto, Manual), t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ from, to, note string }{{"thawed", "frozen", ""}, {"frozen", "frozen", "no change"}} {
		if _, err := Apply(s, Command{Time: t0.Add(time.Duration(i+1) * time.Second), Op: OpFreeze, Actor: "alice"}); err != nil {
			t.Fatal(err)
		}
		e := s.history[len(s.history)-1]
		if e.From != want.from || e.To != want.to || e.Note != want.note {
			t.Errorf("freeze %d: %s → %s (%q), want %s → %s (%q)", i+1, e.From, e.To, e.Note, want.from, want.to, want.note)
		}
	}
}
