package failover

import (
	"errors"
	"testing"
	"time"
)

// TestServiceTTLReplicated: a service's TTL is part of the spec: answers
// carry it, a Respec that changes only the TTL changes the answers (and so
// the answers version every node serves from), and a TTL that is not whole
// seconds or is negative is refused.
func TestServiceTTLReplicated(t *testing.T) {
	sp := storySpec(Auto, Manual)
	sp.Services[0].TTL = 30 * time.Second
	s, err := New(sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Answer("cas", "default")
	if a.TTL != 30*time.Second {
		t.Errorf("answer TTL %s, want 30s", a.TTL)
	}
	sp.Services[0].TTL = 45 * time.Second
	n, err := Respec(s, sp, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := n.Answer("cas", "default"); a.TTL != 45*time.Second {
		t.Errorf("after Respec: answer TTL %s, want 45s", a.TTL)
	}
	if n.AnswersVersion() != s.AnswersVersion()+1 {
		t.Errorf("answers version %d -> %d: a TTL change must bump it", s.AnswersVersion(), n.AnswersVersion())
	}
	for _, bad := range []time.Duration{-time.Second, 1500 * time.Millisecond} {
		sp.Services[0].TTL = bad
		if _, err := New(sp, t0); err == nil {
			t.Errorf("TTL %s accepted", bad)
		} else if fe := new(FieldError); !errors.As(err, &fe) || fe.Path != "services.cas.ttl" {
			t.Errorf("TTL %s: %v, want a field error at services.cas.ttl", bad, err)
		}
	}
}
