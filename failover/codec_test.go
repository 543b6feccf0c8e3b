package failover

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func sampleEvents() []Event {
	tz := time.FixedZone("CET", 3600)
	return []Event{
		Observation{Time: at(time.Second), Node: "ns1", Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: false, Reason: "connect: connection refused"},
		Observation{Time: at(time.Second).In(tz), Node: "ns2", Site: "dallas", Check: "uplink", Up: true},
		SyncVerdict{Time: at(2 * time.Second), Node: "ns1", Site: "dallas", Check: "replication", InSync: false, Reason: "copy_queue_length=12"},
		Beat{Time: at(3 * time.Second), Node: "ns3"},
		Beat{Time: at(3 * time.Second), Node: "ns3", Clock: at(2 * time.Second).In(tz), Digest: "sha256:00ff", Verdicts: "sha256:ff00"},
		VerdictSet{Time: at(3 * time.Second), Node: "ns2",
			Observations: []Observation{
				{Site: "dallas", Endpoint: "192.0.2.10", Check: "https", Up: true, Reason: "200"},
				{Time: at(time.Second).In(tz), Node: "ns2", Site: "dallas", Check: "uplink"},
			},
			Sync: []SyncVerdict{{Site: "dallas", Check: "replication", InSync: true, Reason: "lag=0"}}},
		VerdictSet{Time: at(3 * time.Second), Node: "ns2"},
		Tick{Time: at(4 * time.Second)},
		Command{Time: at(5 * time.Second), Op: OpPromote, Site: "dallas", Force: true, Reason: "verified", Actor: "alice"},
		Command{Time: at(5 * time.Second), Op: OpMode, Service: "cas", Mode: Manual, Failback: Auto},
		Decision{Time: at(6 * time.Second), Service: "cas", Epoch: 3, Actor: "ns1",
			Moves: []Move{{Route: "default", From: "dallas", To: "losangeles", Kind: MoveFailover, Reason: "dallas down for 30s (down_for 30s)"}}},
		Unknown{K: Optional | 0x21, Payload: []byte(`{"future":true}`)},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, e := range sampleEvents() {
		b, err := EncodeEvent(e)
		if err != nil {
			t.Fatalf("EncodeEvent(%#v): %v", e, err)
		}
		if Kind(b[0]) != e.Kind() {
			t.Fatalf("kind byte %d for %T", b[0], e)
		}
		got, err := DecodeEvent(b)
		if err != nil {
			t.Fatalf("DecodeEvent(%q): %v", b, err)
		}
		if !got.EventTime().Equal(e.EventTime()) || got.EventTime().Location() != time.UTC {
			t.Fatalf("time %v (%v) for %v", got.EventTime(), got.EventTime().Location(), e.EventTime())
		}
		b2, err := EncodeEvent(got)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeEvent(b2)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("second round trip: %#v, %v; want %#v", again, err, got)
		}
	}
	b, _ := EncodeEvent(Beat{Time: at(0), Node: "ns1"})
	if want := "\x03" + `{"time":"2025-03-01T12:00:00Z","node":"ns1","clock":"0001-01-01T00:00:00Z"}`; string(b) != want {
		t.Fatalf("beat encodes as %q; want %q", b, want)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "empty input"},
		{"unknown mandatory kind", "\x21{}", "unknown kind 0x21"},
		{"unknown field", "\x03" + `{"node":"ns1","color":"red"}`, `unknown field "color"`},
		{"trailing data", "\x03" + `{"node":"ns1"} {}`, "trailing data"},
		{"not json", "\x06nope", "invalid character"},
		{"bad time", "\x06" + `{"time":"yesterday"}`, "cannot parse"},
		{"time out of range once in UTC", "\x06" + `{"time":"0000-01-01T00:00:00+01:00"}`, "out of range"},
		{"beat clock out of range", "\x03" + `{"node":"ns1","clock":"0000-01-01T00:00:00+01:00"}`, "out of range"},
		{"verdict set element time out of range", "\x07" + `{"node":"ns1","observations":[{"time":"0000-01-01T00:00:00+01:00"}],"sync":[]}`, "out of range"},
		{"verdict set unknown field", "\x07" + `{"node":"ns1","observations":[{"colour":1}]}`, `unknown field "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("DecodeEvent(%q) = %v; want %q", tt.in, err, tt.want)
			}
		})
	}
	if e, err := DecodeEvent([]byte("\xa1anything at all")); err != nil || e.(Unknown).K != 0xa1 {
		t.Fatalf("unknown optional kind: %#v, %v", e, err)
	}
	if _, err := EncodeEvent(Unknown{K: 0x21}); err == nil {
		t.Fatal("encoded an unknown mandatory kind")
	}
	if _, err := EncodeEvent(nil); err == nil {
		t.Fatal("encoded nil")
	}
}

// goldenState is a state reached through every kind of event, written to
// testdata as the version-1 snapshot that later versions must keep reading.
func goldenState(t testing.TB) *State {
	sp := threeSiteSpec(Auto, Auto)
	sp.Sites[0].Endpoints = []Endpoint{{Name: "web1", Address: "192.0.2.10"}, {Name: "web2", Address: "192.0.2.11"}}
	sp.Services = append(sp.Services, ServiceSpec{Name: "web", Names: []string{"www.example.com."},
		Routes: []RouteSpec{{Name: "eu", Sites: []string{"london", "dallas"}}, {Name: "default", Sites: []string{"dallas", "london"}}},
		Policy: Policy{Failover: Manual, Failback: Manual, DownFor: time.Minute}},
		ServiceSpec{Name: "mx", Names: []string{"mx.example.com."},
			Routes: []RouteSpec{{Name: "default", Sites: []string{"losangeles", "london"}}}})
	sp.Nodes = []string{"ns3", "ns1", "ns2"}
	sp.VoteTTL = time.Hour
	s, err := New(sp, t0)
	if err != nil {
		t.Fatal(err)
	}
	events := []Event{}
	for _, n := range []string{"ns1", "ns2", "ns3"} {
		for _, site := range sp.Sites {
			for _, ep := range site.Endpoints {
				events = append(events, Observation{Time: at(0), Node: n, Site: site.Name, Endpoint: ep.Name, Check: "https", Up: true, Reason: "200"})
			}
			events = append(events, SyncVerdict{Time: at(0), Node: n, Site: site.Name, Check: "replication", InSync: true, Reason: "lag=0"})
		}
		events = append(events, Observation{Time: at(time.Minute), Node: n, Site: "dallas", Check: "uplink", Reason: "bgp down"})
	}
	events = append(events,
		Tick{Time: at(2 * time.Minute)},
		Command{Time: at(3 * time.Minute), Op: OpFailover, Service: "web", Site: "london", Route: "default", Actor: "alice", Reason: "dallas uplink"},
		Command{Time: at(3 * time.Minute), Op: OpFailover, Service: "mx", Site: "london", Actor: "alice", Reason: "test"},
		Command{Time: at(4 * time.Minute), Op: OpFreeze, Actor: "bob"},
		// One node of three says losangeles is behind (no quorum); a forced
		// mark-synced attests every node's verdict on it; ns2's verdict set
		// below re-sends its in-sync one, which stays attested.
		SyncVerdict{Time: at(4 * time.Minute), Node: "ns3", Site: "losangeles", Check: "replication", Reason: "lag=9"},
		Command{Time: at(4 * time.Minute), Op: OpMarkSynced, Site: "losangeles", Actor: "bob", Force: true, Reason: "checked by hand"},
		Beat{Time: at(5 * time.Minute), Node: "ns1", Clock: at(5*time.Minute - time.Second), Digest: "sha256:c0ffee", Verdicts: "sha256:beef"},
		VerdictSet{Time: at(5 * time.Minute), Node: "ns2", Observations: []Observation{
			{Site: "dallas", Endpoint: "web1", Check: "https", Up: true, Reason: "200"},
			{Site: "london", Check: "uplink", Up: true},
		}, Sync: []SyncVerdict{{Site: "losangeles", Check: "replication", InSync: true, Reason: "lag=0"}}},
	)
	for _, e := range events {
		if _, err := Apply(s, e); err != nil {
			t.Fatalf("Apply(%#v): %v", e, err)
		}
	}
	// mx is removed: its epoch stays behind.
	sp.Services = sp.Services[:2]
	s, err = Respec(s, sp, at(6*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSnapshotGolden(t *testing.T) {
	s := goldenState(t)
	b, err := MarshalSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := jsonIndent(&pretty, b); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "snapshot_v1.json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSnapshotGolden -update)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("snapshot differs from %s (run with -update if the change is intended and versioned)\n%s", path, pretty.String())
	}
	// The v1 file decodes (indented or not) to the same state.
	got, err := UnmarshalSnapshot(want)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := MarshalSnapshot(got)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("decoded golden snapshot re-encodes differently: %v", err)
	}
}

func TestSnapshotVersions(t *testing.T) {
	b, err := MarshalSnapshot(goldenState(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"version":1,`)) {
		t.Fatalf("snapshot starts %q", b[:20])
	}
	for _, tt := range []struct{ in, want string }{
		{strings.Replace(string(b), `"version":1`, `"version":2`, 1), "version 2 is newer than this build reads (1)"},
		{strings.Replace(string(b), `"version":1,`, ``, 1), "missing or bad version 0"},
		{strings.Replace(string(b), `"frozen":true`, `"frozen":true,"extra":1`, 1), `unknown field "extra"`},
		{strings.Replace(string(b), `"active":"london"`, `"active":"losangeles"`, 1), `not in route`},
		{strings.Replace(string(b), `"admin":"active"`, `"admin":"asleep"`, 1), `bad value "asleep"`},
		{strings.Replace(string(b), `"vote_ttl":3600000000000`, `"vote_ttl":0`, 1), `vote_ttl: must be positive`},
		{strings.Replace(string(b), `"retired":[{"service":"mx","epoch":1}]`, `"retired":[{"service":"cas","epoch":1}]`, 1), `retired[0]: service "cas"`},
		{strings.Replace(string(b), `"retired":[{"service":"mx","epoch":1}]`, `"retired":[{"service":"mx","epoch":0}]`, 1), `retired[0]: service "mx" with epoch 0`},
		{strings.Replace(string(b), `"retired":[{"service":"mx","epoch":1}]`, `"retired":[{"service":"mx","epoch":1},{"service":"mx","epoch":2}]`, 1), `retired[1]`},
		{strings.Replace(string(b), `"last_seen":"2025-03-01T12:05:00Z","clock"`, `"last_seen":"0001-01-01T00:00:00Z","clock"`, 1), `never seen but has beat fields`},
		{strings.Replace(string(b), `"clock":"2025-03-01T12:04:59Z"`, `"clock":"2025-03-01T12:04:59+01:00"`, 1), ``},
		{strings.Replace(string(b), `"answers_version":`, `"answers_version":-`, 1), `cannot unmarshal number -`},
		{strings.Replace(string(b), `{"name":"web1","address":"192.0.2.10"}`, `{"name":"web1"}`, 1), `sites.dallas.endpoints[0].address: empty address`},
		{strings.Replace(string(b), `"name":"losangeles","admin":"active","health":"up","health_since":"2025-03-01T12:01:00Z","sync":"in_sync"`,
			`"name":"losangeles","admin":"active","health":"up","health_since":"2025-03-01T12:01:00Z","sync":"resyncing"`, 1),
			`sites.losangeles.sync_votes: node "ns1": attested vote on a site that is resyncing, not in_sync`},
		{"[]", "cannot unmarshal"},
	} {
		if tt.want == "" { // accepted
			if _, err := UnmarshalSnapshot([]byte(tt.in)); err != nil {
				t.Errorf("UnmarshalSnapshot = %v", err)
			}
			continue
		}
		if _, err := UnmarshalSnapshot([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("UnmarshalSnapshot = %v; want %q", err, tt.want)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	s := goldenState(t)
	before, _ := MarshalSnapshot(s)
	c := s.Clone()
	for _, e := range []Event{
		Observation{Time: at(time.Hour), Node: "ns1", Site: "dallas", Endpoint: "web1", Check: "https", Reason: "reset"},
		Observation{Time: at(time.Hour), Node: "ns1", Site: "dallas", Endpoint: "web1", Check: "icmp", Up: true},
		SyncVerdict{Time: at(time.Hour), Node: "ns2", Site: "losangeles", Check: "replication", Reason: "lag"},
		Command{Time: at(time.Hour), Op: OpThaw},
		Command{Time: at(time.Hour), Op: OpDrain, Site: "london", Force: true, Reason: "x"},
		Command{Time: at(time.Hour), Op: OpMode, Service: "cas", Mode: Manual},
	} {
		if _, err := Apply(s, e); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := MarshalSnapshot(c); !bytes.Equal(before, after) {
		t.Fatal("Apply on the original changed its clone")
	}
	if after, _ := MarshalSnapshot(s); bytes.Equal(before, after) {
		t.Fatal("the events changed nothing (test is vacuous)")
	}
}

func FuzzDecodeEvent(f *testing.F) {
	for _, e := range sampleEvents() {
		b, err := EncodeEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("\x04null"))
	f.Add([]byte("\x05" + `{"moves":[]}`))
	f.Add([]byte("\x01" + `{"Time":"2025-01-01T00:00:00+14:00","NODE":"ns1"}`))
	s, err := New(storySpec(Auto, Auto), t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEvent(b)
		if err != nil {
			return
		}
		b1, err := EncodeEvent(e)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", e, err)
		}
		e2, err := DecodeEvent(b1)
		if err != nil {
			t.Fatalf("re-decode %q: %v", b1, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("decode(encode(e)) = %#v; want %#v", e2, e)
		}
		if b2, _ := EncodeEvent(e2); !bytes.Equal(b1, b2) {
			t.Fatalf("encoding not stable: %q vs %q", b1, b2)
		}
		// Whatever decodes must apply without panicking.
		_, _ = Apply(s.Clone(), e)
	})
}

func FuzzUnmarshalSnapshot(f *testing.F) {
	b, err := MarshalSnapshot(goldenState(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	s, _ := New(storySpec(Manual, Auto), t0)
	b, _ = MarshalSnapshot(s)
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSnapshot(b)
		if err != nil {
			return
		}
		b1, err := MarshalSnapshot(s)
		if err != nil {
			t.Fatalf("decoded snapshot does not encode: %v", err)
		}
		s2, err := UnmarshalSnapshot(b1)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if b2, _ := MarshalSnapshot(s2); !bytes.Equal(b1, b2) {
			t.Fatalf("decode∘encode is not the identity:\n%s\n%s", b1, b2)
		}
		// A decoded state must take events, decide and render without panicking.
		now := s.Now().Add(time.Minute)
		for _, n := range s.spec.Nodes {
			_, _ = Apply(s, Beat{Time: now, Node: n})
		}
		for _, d := range Decide(s, now) {
			_, _ = Apply(s, d)
		}
		_ = s.Status()
		_ = s.Answers()
	})
}

func jsonIndent(dst *bytes.Buffer, b []byte) error {
	if err := json.Indent(dst, b, "", "  "); err != nil {
		return err
	}
	dst.WriteByte('\n')
	return nil
}
