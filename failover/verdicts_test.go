package failover

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// nodeVotes lists a node's votes as "site/endpoint/check=up" and its sync
// votes as "site:sync=in_sync", sorted.
func nodeVotes(s *State, node string) []string {
	var out []string
	for _, site := range s.Status().Sites {
		for _, ep := range append([]EndpointStatus{site.SiteChecks}, site.Endpoints...) {
			for _, v := range ep.Votes {
				if v.Node == node {
					out = append(out, site.Name+"/"+ep.Name+"/"+v.Check+"="+map[bool]string{true: "up", false: "down"}[v.Up])
				}
			}
		}
		for _, v := range site.SyncVotes {
			if v.Node == node {
				out = append(out, site.Name+":sync="+map[bool]string{true: "in", false: "out"}[v.InSync])
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestVerdictSetReplacesTheNodesVerdicts(t *testing.T) {
	h := newHarness(t, threeSiteSpec(Auto, Auto))
	h.allUp(at(0))
	h.apply(Observation{Time: at(0), Node: "ns1", Site: "dallas", Check: "uplink", Up: true})
	set := VerdictSet{Time: at(time.Minute), Node: "ns1",
		Observations: []Observation{{Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: true, Reason: "200"},
			{Site: "london", Endpoint: "203.0.113.10", Check: "smtp", Up: false, Reason: "421"}},
		Sync: []SyncVerdict{{Site: "losangeles", Check: "replication", InSync: false, Reason: "lag=9s"}}}
	res := h.apply(set)
	if res.Ignored != "" {
		t.Fatalf("ignored %q", res.Ignored)
	}
	if got, want := nodeVotes(h.s, "ns1"), []string{"dallas/192.0.2.10/https=up", "london/203.0.113.10/smtp=down", "losangeles:sync=out"}; !slices.Equal(got, want) {
		t.Fatalf("ns1 votes = %q; want %q", got, want)
	}
	if got := len(nodeVotes(h.s, "ns2")); got != 5+3 {
		t.Fatalf("ns2 has %d votes; another node's verdicts must stay", got)
	}
	st := h.s.Status()
	if !st.Nodes[0].LastSeen.Equal(at(time.Minute)) {
		t.Fatalf("ns1 last seen %s", st.Nodes[0].LastSeen)
	}
	for _, v := range st.Sites[0].Endpoints[0].Votes {
		if v.Node == "ns1" && (!v.Time.Equal(at(time.Minute)) || v.Reason != "200") {
			t.Fatalf("vote %+v: given at the set's time, with its reason", v)
		}
	}
	if got, want := h.s.NodeVerdictsDigest("ns1"), VerdictsDigest(set.Observations, set.Sync); got != want {
		t.Fatalf("NodeVerdictsDigest = %s; want %s", got, want)
	}
	if h.s.NodeVerdictsDigest("ns2") == h.s.NodeVerdictsDigest("ns1") || h.s.NodeVerdictsDigest("ns9") != "" {
		t.Fatal("digests of other nodes")
	}
	// An empty set clears the node.
	h.apply(VerdictSet{Time: at(2 * time.Minute), Node: "ns1"})
	if got := nodeVotes(h.s, "ns1"); len(got) != 0 {
		t.Fatalf("after an empty set: %q", got)
	}
	if h.s.NodeVerdictsDigest("ns1") != VerdictsDigest(nil, nil) {
		t.Fatal("empty digest")
	}
}

// A VerdictSet is the node's verdicts applied one by one at its time from a
// clean slate: the same state, byte for byte.
func TestVerdictSetIsOneByOneFromACleanSlate(t *testing.T) {
	others := nodes6[1:]
	base := func() *harness {
		h := newHarness(t, threeSiteSpec(Auto, Auto))
		for _, sp := range h.s.spec.Sites {
			h.site(sp.Name, true, at(0), others...)
			h.sync(sp.Name, true, "lag=0", at(0), others...)
		}
		return h
	}
	obs := []Observation{
		{Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: false, Reason: "refused"},
		{Site: "dallas", Endpoint: "192.0.2.11", Check: "https", Up: true, Reason: "200"},
		{Site: "london", Check: "uplink", Up: true},
	}
	sync := []SyncVerdict{{Site: "losangeles", Check: "replication", InSync: true, Reason: "lag=0"}}
	a := base()
	// ns1 said other things before.
	a.site("losangeles", false, at(0), "ns1")
	a.sync("dallas", false, "lag=99", at(0), "ns1")
	a.apply(VerdictSet{Time: at(time.Minute), Node: "ns1", Observations: obs, Sync: sync})
	b := base()
	for _, o := range obs {
		o.Time, o.Node = at(time.Minute), "ns1"
		b.apply(o)
	}
	for _, v := range sync {
		v.Time, v.Node = at(time.Minute), "ns1"
		b.apply(v)
	}
	sa, _ := MarshalSnapshot(a.s)
	sb, _ := MarshalSnapshot(b.s)
	if !bytes.Equal(sa, sb) {
		t.Fatalf("VerdictSet and one by one differ:\n%s\n%s", sa, sb)
	}
	// The order of the set does not matter.
	c := base()
	slices.Reverse(obs)
	c.site("losangeles", false, at(0), "ns1")
	c.sync("dallas", false, "lag=99", at(0), "ns1")
	c.apply(VerdictSet{Time: at(time.Minute), Node: "ns1", Observations: obs, Sync: sync})
	if sc, _ := MarshalSnapshot(c.s); !bytes.Equal(sa, sc) {
		t.Fatal("the order of a verdict set matters")
	}
}

// The resync rule: sync verdicts forgotten when a site loses in_sync count
// again when a VerdictSet re-sends them after the loss, not before.
func TestVerdictSetResendCountsAfterTheLoss(t *testing.T) {
	h := newHarness(t, threeSiteSpec(Manual, Manual))
	current := map[string]VerdictSet{} // what each node currently thinks
	think := func(when time.Time, laUp bool) {
		for _, n := range nodes6 {
			v := VerdictSet{Time: when, Node: n, Sync: []SyncVerdict{{Site: "losangeles", Check: "replication", InSync: true, Reason: "lag=0"}}}
			for _, sp := range h.s.spec.Sites {
				for _, ep := range sp.Endpoints {
					v.Observations = append(v.Observations, Observation{Site: sp.Name, Endpoint: ep.Name, Check: "https",
						Up: sp.Name != "losangeles" || laUp})
				}
			}
			current[n] = v
		}
	}
	// Each node resends when the cluster's view of it differs from its own.
	resend := func(when time.Time) int {
		sent := 0
		for _, n := range nodes6 {
			v := current[n]
			if h.s.NodeVerdictsDigest(n) != VerdictsDigest(v.Observations, v.Sync) {
				v.Time = when
				h.apply(v)
				sent++
			}
		}
		return sent
	}
	think(at(0), true)
	if sent := resend(at(0)); sent != 6 {
		t.Fatalf("%d nodes sent their first set", sent)
	}
	h.wantSite("losangeles", Up, InSync)
	if sent := resend(at(time.Second)); sent != 0 {
		t.Fatalf("%d nodes resent with nothing changed", sent)
	}
	// losangeles goes down while standing by: resyncing at once. The sync
	// check's verdict (still "in sync") is given in the same sets, after
	// the loss: kept, so no node needs to resend.
	think(at(time.Minute), false)
	resend(at(time.Minute))
	h.wantSite("losangeles", Down, Resyncing)
	// Individual in-sync verdicts given before the loss would not count;
	// re-sent (current) ones do, once losangeles is up again.
	think(at(2*time.Minute), true)
	resend(at(2 * time.Minute))
	h.wantSite("losangeles", Up, InSync)

	// Now a loss that forgets verdicts: a quorum says not in sync.
	for _, n := range nodes6[:4] {
		v := current[n]
		v.Sync = []SyncVerdict{{Site: "losangeles", Check: "replication", InSync: false, Reason: "lag=900s"}}
		current[n] = v
	}
	resend(at(3 * time.Minute))
	h.wantSite("losangeles", Up, Resyncing)
	// The loss (at ns4's set) forgot every sync verdict: ns5 and ns6, next in
	// the same round, already saw their digests differ and resent; ns1..ns4
	// do at the next round. Their re-sent (current) verdicts count again.
	if sent := resend(at(4 * time.Minute)); sent != 4 {
		t.Fatalf("%d nodes resent after the loss forgot their verdicts", sent)
	}
	h.wantSite("losangeles", Up, Resyncing) // 4 of 6 still say not in sync
	for _, n := range nodes6[:4] {
		v := current[n]
		v.Sync[0].InSync = true
		current[n] = v
	}
	resend(at(5 * time.Minute))
	h.wantSite("losangeles", Up, InSync)
}

func TestVerdictSetSkipsWhatTheSpecDoesNotHave(t *testing.T) {
	h := newHarness(t, threeSiteSpec(Auto, Auto))
	obs := []Observation{
		{Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: true},
		{Site: "paris", Check: "https", Up: true},
		{Site: "dallas", Endpoint: "192.0.2.99", Check: "https", Up: true},
	}
	sync := []SyncVerdict{{Site: "london", Check: "replication", InSync: true}, {Site: "dallas", Check: "lag", InSync: true}}
	res := h.apply(VerdictSet{Time: at(time.Second), Node: "ns2", Observations: obs, Sync: sync})
	const want = `verdicts on what the spec does not have: unknown site "paris", site dallas has no endpoint "192.0.2.99", site dallas has no sync check "lag"`
	if res.Ignored != want {
		t.Fatalf("ignored = %q", res.Ignored)
	}
	ko, ks := h.s.KnownVerdicts(obs, sync)
	if len(ko) != 1 || len(ks) != 1 || ks[0].Site != "london" {
		t.Fatalf("known = %+v %+v", ko, ks)
	}
	if h.s.NodeVerdictsDigest("ns2") != VerdictsDigest(ko, ks) || h.s.NodeVerdictsDigest("ns2") == VerdictsDigest(obs, sync) {
		t.Fatal("digest of the known verdicts")
	}
}

func TestVerdictSetInvalid(t *testing.T) {
	h := newHarness(t, threeSiteSpec(Auto, Auto))
	h.allUp(at(0))
	o := Observation{Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: true}
	for _, tt := range []struct {
		set  VerdictSet
		want string
	}{
		{VerdictSet{Node: "ns9"}, `unknown node "ns9"`},
		{VerdictSet{Node: "ns1", Observations: []Observation{{Node: "ns2", Site: "dallas", Check: "https"}}}, `observations[0]: node "ns2" in a verdict set of node "ns1"`},
		{VerdictSet{Node: "ns1", Observations: []Observation{o, o}}, `observations[1]: a second verdict on site "dallas" endpoint "192.0.2.10" check "https"`},
		{VerdictSet{Node: "ns1", Observations: []Observation{{Site: "dallas"}}}, `observations[0]: empty check`},
		{VerdictSet{Node: "ns1", Sync: []SyncVerdict{{Node: "ns3", Site: "dallas"}}}, `sync[0]: node "ns3" in a verdict set of node "ns1"`},
		{VerdictSet{Node: "ns1", Sync: []SyncVerdict{{Site: "dallas"}, {Site: "dallas"}}}, `sync[1]: a second sync verdict on site "dallas"`},
	} {
		before, _ := MarshalSnapshot(h.s)
		tt.set.Time = at(time.Minute)
		_, err := Apply(h.s, tt.set)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Apply(%+v) = %v; want %q", tt.set, err, tt.want)
		}
		if after, _ := MarshalSnapshot(h.s); !bytes.Equal(before, after) {
			t.Errorf("an invalid set changed the state")
		}
	}
}

func TestVerdictsDigest(t *testing.T) {
	obs := []Observation{
		{Time: at(0), Node: "ns1", Site: "dallas", Endpoint: "a", Check: "https", Up: true, Reason: "200 in 3ms"},
		{Site: "dallas", Check: "uplink", Up: false},
	}
	sync := []SyncVerdict{{Site: "dallas", Check: "replication", InSync: true, Reason: "lag=0"}}
	d := VerdictsDigest(obs, sync)
	if !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("digest %q", d)
	}
	if VerdictsDigest(nil, nil) != "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty digest %q", VerdictsDigest(nil, nil))
	}
	same := []Observation{obs[1], obs[0]}
	same[1].Time, same[1].Node, same[1].Reason = at(time.Hour), "", "200 in 9ms"
	if VerdictsDigest(same, []SyncVerdict{{Site: "dallas", Check: "replication", InSync: true, Reason: "lag=1"}}) != d {
		t.Fatal("digest depends on order, time, node or reason")
	}
	for name, change := range map[string]func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict){
		"up flips": func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) { o[0].Up = false; return o, s },
		"in_sync flips": func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) {
			s[0].InSync = false
			return o, s
		},
		"check renamed": func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) { o[1].Check = "bgp"; return o, s },
		"endpoint moved": func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) {
			o[0].Endpoint = "b"
			return o, s
		},
		"verdict gone": func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) { return o[:1], s },
		"sync gone":    func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) { return o, nil },
		"field boundary": func(o []Observation, s []SyncVerdict) ([]Observation, []SyncVerdict) {
			o[0].Site, o[0].Endpoint = "dallas a", ""
			return o, s
		},
	} {
		if VerdictsDigest(change(slices.Clone(obs), slices.Clone(sync))) == d {
			t.Errorf("%s: digest unchanged", name)
		}
	}
}

func TestAnswersVersion(t *testing.T) {
	h := newHarness(t, threeSiteSpec(Manual, Manual))
	v := func(want uint64) {
		t.Helper()
		if got := h.s.AnswersVersion(); got != want {
			t.Fatalf("answers version %d; want %d", got, want)
		}
		if got := h.s.Status().AnswersVersion; got != want {
			t.Fatalf("status answers version %d; want %d", got, want)
		}
	}
	v(0)
	h.allUp(at(0))
	v(0) // unknown -> up: every endpoint was already answered
	h.endpoint("losangeles", "198.51.100.10", false, at(time.Second), nodes6...)
	v(0) // not the active site
	h.endpoint("dallas", "192.0.2.10", false, at(time.Second), nodes6...)
	v(1)
	h.endpoint("dallas", "192.0.2.10", false, at(2*time.Second), nodes6...)
	v(1) // the same again
	h.endpoint("dallas", "192.0.2.11", false, at(3*time.Second), nodes6...)
	v(2) // fail open: every endpoint again
	h.apply(Tick{Time: at(3*time.Second + 30*time.Second)})
	v(3) // awaiting_operator: the condition is part of the answer
	h.mustCmd(Command{Op: OpFailover, Service: "cas", Site: "losangeles"})
	v(4)
	h.mustCmd(Command{Op: OpFreeze})
	v(5) // frozen
	h.mustCmd(Command{Op: OpFreeze})
	v(5) // already frozen
	// Respec: the same spec changes nothing, a new address of an answered
	// endpoint does.
	n, err := Respec(h.s, threeSiteSpec(Manual, Manual), h.s.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.s = n
	v(5)
	sp := threeSiteSpec(Manual, Manual)
	sp.Sites[1].Endpoints[1].Address = "198.51.100.99"
	if h.s, err = Respec(h.s, sp, h.s.Now()); err != nil {
		t.Fatal(err)
	}
	v(6)
	if a, _ := h.s.Answer("cas", "default"); !slices.Equal(a.Endpoints, []Endpoint{{Name: "198.51.100.11", Address: "198.51.100.99"}}) {
		t.Fatalf("answer %+v", a)
	}
	b, _ := MarshalSnapshot(h.s)
	r, err := UnmarshalSnapshot(b)
	if err != nil || r.AnswersVersion() != 6 {
		t.Fatalf("restored answers version %d, %v", r.AnswersVersion(), err)
	}
}

func TestBeatFieldsInStatus(t *testing.T) {
	h := newHarness(t, storySpec(Auto, Auto))
	cet := time.FixedZone("CET", 3600)
	h.apply(Beat{Time: at(time.Minute), Node: "ns2", Clock: at(time.Minute - 2*time.Second).In(cet), Digest: "sha256:ab", Verdicts: "sha256:cd"})
	st := h.s.Status()
	n := st.Nodes[1]
	if n.Name != "ns2" || !n.LastSeen.Equal(at(time.Minute)) || !n.Clock.Equal(at(time.Minute-2*time.Second)) ||
		n.Clock.Location() != time.UTC || n.Digest != "sha256:ab" || n.Verdicts != "sha256:cd" || n.HeldVerdicts != VerdictsDigest(nil, nil) {
		t.Fatalf("node status = %+v", n)
	}
	// Clock and digests decide nothing: the same events without them give
	// the same health, sync, routes and history.
	h2 := newHarness(t, storySpec(Auto, Auto))
	h2.apply(Beat{Time: at(time.Minute), Node: "ns2"})
	a, b := h.s.Status(), h2.s.Status()
	a.Nodes, b.Nodes = nil, nil
	if ab, bb := mustJSON(t, a), mustJSON(t, b); !bytes.Equal(ab, bb) {
		t.Fatalf("beat fields changed the state:\n%s\n%s", ab, bb)
	}
	if e := st.Sites[0].Endpoints[0]; e.Name != "192.0.2.10" || e.Address != "192.0.2.10" {
		t.Fatalf("endpoint status %+v", e)
	}
}
