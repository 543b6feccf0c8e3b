package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/geodnsd/geodnsd/failover"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestFSM() *fsm {
	return &fsm{
		publish: func(*failover.State, uint64, error) {},
		onHalt:  func(error, uint64) {},
		onEvent: func(string, error) {},
	}
}

// memSink is a raft.SnapshotSink into memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

func snapshotBytes(t *testing.T, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("persist: %v", err)
	}
	snap.Release()
	return sink.Bytes()
}

func stateBytes(t *testing.T, s *failover.State) []byte {
	t.Helper()
	b, err := failover.MarshalSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// genLog makes a log as a leader would: the bootstrap spec, then per step
// observations, beats, verdict sets, commands (some refused or invalid),
// ticks with the decisions Decide proposes, a config change, an unknown
// optional event and membership entries.
func genLog(t *testing.T, seed uint64, steps int) []*raft.Log {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	nodes := ids(3)
	spec := testSpec(nodes)
	var logs []*raft.Log
	ref := newTestFSM()
	add := func(data []byte, typ raft.LogType) {
		l := &raft.Log{Index: uint64(len(logs) + 1), Term: 1, Type: typ, Data: data}
		logs = append(logs, l)
		ref.apply(l)
	}
	events := func(evs ...failover.Event) {
		b, err := encodeEvents(evs)
		if err != nil {
			t.Fatal(err)
		}
		add(b, raft.LogCommand)
	}
	add(nil, raft.LogConfiguration)
	sb, err := encodeSpec(specEntry{Time: t0, Spec: spec, Initial: true})
	if err != nil {
		t.Fatal(err)
	}
	add(sb, raft.LogCommand)
	now := t0
	sites := []struct{ site, ep string }{{"dallas", "d1"}, {"losangeles", "l1"}}
	for i := range steps {
		now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		n := nodes[rng.IntN(len(nodes))]
		switch r := rng.IntN(10); {
		case r < 4:
			var evs []failover.Event
			for range 1 + rng.IntN(4) {
				s := sites[rng.IntN(2)]
				evs = append(evs, failover.Observation{Time: now, Node: nodes[rng.IntN(3)], Site: s.site, Endpoint: s.ep, Check: "http", Up: rng.IntN(3) > 0, Reason: "r"})
			}
			events(evs...)
		case r < 5:
			events(failover.Beat{Time: now, Node: n, Clock: now.Add(-time.Millisecond), Digest: "sha256:00", Verdicts: "sha256:11"})
		case r < 6:
			s := sites[rng.IntN(2)]
			events(failover.VerdictSet{Time: now, Node: n, Observations: []failover.Observation{{Site: s.site, Endpoint: s.ep, Check: "http", Up: rng.IntN(2) == 0}}})
		case r < 7:
			ops := []failover.Command{
				{Op: failover.OpPromote, Site: "dallas"},
				{Op: failover.OpFailover, Service: "cas", Site: "losangeles"},
				{Op: failover.OpDrain, Site: "losangeles"},
				{Op: failover.OpUndrain, Site: "losangeles"},
				{Op: failover.OpFreeze}, {Op: failover.OpThaw},
				{Op: failover.OpMarkSynced, Site: "dallas"},
				{Op: failover.OpPromote, Site: "atlantis"}, // invalid
			}
			c := ops[rng.IntN(len(ops))]
			c.Time, c.Actor = now, "op"
			events(c)
		case r < 8 && i == steps/2:
			sp := testSpec(nodes)
			sp.Services[0].Routes = append(sp.Services[0].Routes, failover.RouteSpec{Name: "us", Sites: []string{"losangeles", "dallas"}})
			b, err := encodeSpec(specEntry{Time: now, Spec: sp})
			if err != nil {
				t.Fatal(err)
			}
			add(b, raft.LogCommand)
		case r < 8:
			// An optional event kind this build does not know: ignored.
			b := []byte{entryEvents}
			b = append(b, 8)
			b = append(b, byte(failover.Optional|0x33))
			b = append(b, `{"x":1}`...)
			add(b, raft.LogCommand)
		case r < 9:
			add(nil, raft.LogNoop)
		default:
			events(failover.Tick{Time: now})
			if ds := failover.Decide(ref.state, now); len(ds) > 0 {
				evs := make([]failover.Event, len(ds))
				for j, d := range ds {
					evs[j] = d
				}
				events(evs...)
			}
		}
	}
	if ref.halted != nil {
		t.Fatalf("reference FSM halted: %v", ref.halted)
	}
	return logs
}

// Six FSMs fed the same log — one entry at a time, in raft batches of
// various sizes, or through a snapshot taken midway and restored into a
// fresh FSM — end byte-identical.
func TestSixFSMsSameLogSameBytes(t *testing.T) {
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			logs := genLog(t, seed, 300)
			var got [][]byte
			// 1: one by one.
			f := newTestFSM()
			for _, l := range logs {
				f.Apply(l)
			}
			got = append(got, stateBytes(t, f.state))
			// 2..4: batches of 1..n.
			for _, size := range []int{7, 64, len(logs)} {
				f := newTestFSM()
				for i := 0; i < len(logs); i += size {
					f.ApplyBatch(logs[i:min(i+size, len(logs))])
				}
				got = append(got, stateBytes(t, f.state))
			}
			// 5, 6: snapshot midway, restore into a fresh FSM, go on.
			for _, cut := range []int{len(logs) / 3, 2 * len(logs) / 3} {
				a := newTestFSM()
				a.ApplyBatch(logs[:cut])
				b := newTestFSM()
				if err := b.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, a)))); err != nil {
					t.Fatal(err)
				}
				if b.index != logs[cut-1].Index {
					t.Fatalf("restored index %d, want %d", b.index, logs[cut-1].Index)
				}
				for _, l := range logs[cut:] {
					b.Apply(l)
				}
				got = append(got, stateBytes(t, b.state))
			}
			for i := 1; i < len(got); i++ {
				if !bytes.Equal(got[0], got[i]) {
					t.Fatalf("FSM %d differs from FSM 1 (%d vs %d bytes)", i+1, len(got[i]), len(got[0]))
				}
			}
			var st failover.Status
			{
				s, _ := failover.UnmarshalSnapshot(got[0])
				st = s.Status()
			}
			if len(st.History) < 3 {
				t.Errorf("the generated log made only %d history entries; it tests too little", len(st.History))
			}
		})
	}
}

// Snapshot then restore gives the same state, byte for byte, and the same
// snapshot again.
func TestSnapshotRestoreByteIdentical(t *testing.T) {
	logs := genLog(t, 42, 300)
	f := newTestFSM()
	f.ApplyBatch(logs)
	snap := snapshotBytes(t, f)
	g := newTestFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stateBytes(t, f.state), stateBytes(t, g.state)) {
		t.Fatal("restored state differs")
	}
	if again := snapshotBytes(t, g); !bytes.Equal(snap, again) {
		t.Fatal("snapshot of the restored FSM differs")
	}
	if g.index != f.index {
		t.Fatalf("restored index %d, want %d", g.index, f.index)
	}
	// A snapshot before any spec restores to no state.
	e := newTestFSM()
	h := newTestFSM()
	if err := h.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, e)))); err != nil || h.state != nil {
		t.Fatalf("empty snapshot: state %v, err %v", h.state, err)
	}
	if err := h.Restore(io.NopCloser(bytes.NewReader([]byte("garbage")))); err == nil {
		t.Fatal("garbage restored")
	}
}

// An entry the FSM cannot apply stops it: it never skips the entry,
// refuses every later one, keeps its state and index, refuses snapshots
// (so raft cannot compact past the entry), and says so once.
func TestFSMHaltsOnEntryItCannotApply(t *testing.T) {
	bad := map[string][]byte{
		"unknown mandatory event kind": {entryEvents, 3, 0x7f, '{', '}'},
		"unknown entry type":           {0x09, '{', '}'},
		"bad event length":             {entryEvents, 200, 1},
		"malformed observation":        append([]byte{entryEvents, 9, byte(failover.KindObservation)}, `{"bad":1}`...),
		"empty entry":                  {},
		"malformed spec entry":         append([]byte{entrySpec}, `{"spec":7}`...),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			logs := genLog(t, 7, 30)
			f := newTestFSM()
			halts := 0
			f.onHalt = func(err error, idx uint64) { halts++ }
			f.ApplyBatch(logs)
			before := stateBytes(t, f.state)
			idx := f.index
			badIdx := logs[len(logs)-1].Index + 1
			r := f.Apply(&raft.Log{Index: badIdx, Type: raft.LogCommand, Data: data}).(*entryResult)
			if !errors.Is(r.Err, ErrHalted) || f.halted == nil || halts != 1 {
				t.Fatalf("bad entry: result %v, halted %v, %d halt reports", r.Err, f.halted, halts)
			}
			tick, _ := encodeEvents([]failover.Event{failover.Tick{Time: t0.Add(time.Hour)}})
			r = f.Apply(&raft.Log{Index: badIdx + 1, Type: raft.LogCommand, Data: tick}).(*entryResult)
			if !errors.Is(r.Err, ErrHalted) {
				t.Fatalf("entry after the halt: %v, want ErrHalted", r.Err)
			}
			if f.index != idx || !bytes.Equal(before, stateBytes(t, f.state)) {
				t.Fatalf("halted FSM moved: index %d -> %d", idx, f.index)
			}
			if _, err := f.Snapshot(); !errors.Is(err, ErrHalted) {
				t.Fatalf("snapshot of a halted FSM: %v, want ErrHalted", err)
			}
			if halts != 1 {
				t.Fatalf("%d halt reports, want 1", halts)
			}
		})
	}
}

// Rejections by the failover core are normal: the entry is applied (a
// refused command as a tick), the FSM goes on.
func TestFSMNormalRejections(t *testing.T) {
	f := newTestFSM()
	sb, _ := encodeSpec(specEntry{Time: t0, Spec: testSpec(ids(3)), Initial: true})
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: sb})
	var rejected []string
	f.onEvent = func(kind string, err error) { rejected = append(rejected, kind) }
	data, _ := encodeEvents([]failover.Event{
		obs("ns9", "dallas", "d1", false),                                      // unknown node: invalid
		failover.Command{Time: t0, Op: failover.OpPromote, Site: "losangeles"}, // refused: not up
		obs("ns1", "dallas", "d1", true),
	})
	r := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data}).(*entryResult)
	if f.halted != nil || r.Rejected != 2 || !errors.Is(r.Err, failover.ErrInvalid) || f.index != 2 {
		t.Fatalf("result %+v, halted %v, index %d", r, f.halted, f.index)
	}
	if len(rejected) != 2 || rejected[0] != "observation" || rejected[1] != "command" {
		t.Fatalf("rejected kinds %v", rejected)
	}
	if normal(errors.New("disk on fire")) || !normal(fmt.Errorf("x: %w", failover.ErrRefused)) {
		t.Fatal("normal() misclassifies")
	}
	// An initial spec after the first is ignored; a bad respec is rejected.
	sb2, _ := encodeSpec(specEntry{Time: t0, Spec: testSpec(ids(2)), Initial: true})
	f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: sb2})
	if n := len(f.state.Spec().Nodes); n != 3 {
		t.Fatalf("a second initial spec replaced the first: %d nodes", n)
	}
	bad := testSpec(ids(3))
	bad.VoteTTL = 0
	sb3, _ := encodeSpec(specEntry{Time: t0, Spec: bad})
	r = f.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: sb3}).(*entryResult)
	if r.Err == nil || f.halted != nil || f.index != 4 {
		t.Fatalf("bad respec: %+v halted %v", r, f.halted)
	}
}
