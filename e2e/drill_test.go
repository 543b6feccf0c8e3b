package e2e

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/geodnsd/geodnsd/lab"
)

// TestDrillManual is the disaster drill as the operators tell it, on six
// real processes, with failoverctl typed as an operator would:
//
//  1. one Dallas endpoint fails: it leaves the answers on all six; cas stays;
//  2. every Dallas backend fails, cas in manual mode: all six still answer
//     Dallas, status says awaiting_operator, the alert's metric is set;
//  3. failoverctl failover cas --to losangeles: all six answer Los Angeles;
//     www (auto) has already moved by itself; the MX target too;
//     then 2 of 6 nodes are killed, the leader among them: nothing a client
//     sees changes;
//  4. Dallas repaired, its replication 12 items behind: promote dallas is
//     refused, naming the check and the value, exit code 1; nothing moves;
//  5. replication at 0: promote dallas succeeds, all six answer Dallas; the
//     history shows every step with its actor.
func TestDrillManual(t *testing.T) {
	if testing.Short() {
		t.Skip("six processes: not in -short")
	}
	c := startLab(t, lab.Options{Net: 3})
	all := c.ids()
	c.waitAnswer(moveWithin, all, "cas.example.com", noECS, dallasAddrs...)

	// 1. One endpoint down: it leaves the answers; cas stays in Dallas.
	if err := c.be.SetEndpoint("dallas", "dal1", false); err != nil {
		t.Fatal(err)
	}
	c.waitAnswer(moveWithin, all, "cas.example.com", noECS, "192.0.2.11")
	c.waitAnswer(moveWithin, all, "owa.example.com", noECS, "192.0.2.11")
	c.waitCondition(moveWithin, all, "cas", "dallas", "normal")

	// 2. The whole site down, manual mode: keep answering Dallas (every
	// endpoint, fail open), awaiting an operator, loudly.
	if err := c.be.SetSite("dallas", false); err != nil {
		t.Fatal(err)
	}
	c.waitCondition(moveWithin, all, "cas", "dallas", "awaiting_operator")
	if err := c.checkAnswer(all, "cas.example.com", noECS, dallasAddrs...); err != nil {
		t.Errorf("awaiting an operator, cas must answer every Dallas endpoint: %v", err)
	}
	c.waitFor(moveWithin, "the awaiting_operator metric", func() error {
		return c.metric("ns4", `geodnsd_failover_route_condition{condition="awaiting_operator",route="default",service="cas"} 1`)
	})
	// www (auto) moved by itself meanwhile.
	c.waitAnswer(moveWithin, all, "www.example.com", usClient, londonAddrs...)

	// 3. The operator fails cas over.
	code, out, errOut := c.failoverctl([]string{"ns2"}, "failover", "cas", "--to", "losangeles", "--wait")
	if code != 0 {
		t.Fatalf("failoverctl failover: exit %d\n%s%s", code, out, errOut)
	}
	// --wait: every reachable node has applied it when failoverctl returns.
	if err := c.checkAnswer(all, "cas.example.com", noECS, laAddrs...); err != nil {
		t.Errorf("after failover --wait: %v", err)
	}
	c.waitAnswer(moveWithin, all, "mail.example.com", noECS, laAddrs...)
	c.checkMX(all, laAddrs)

	// Kill 2 of 6, the leader among them: what clients see does not change.
	st, err := c.status("ns1")
	if err != nil {
		t.Fatal(err)
	}
	dead := []string{st.Leader, "ns6"}
	if st.Leader == "ns6" {
		dead = []string{"ns6", "ns5"}
	}
	for _, id := range dead {
		c.kill(id)
	}
	alive := without(all, dead...)
	for range 10 {
		if err := c.checkAnswer(alive, "cas.example.com", noECS, laAddrs...); err != nil {
			t.Fatalf("with %v killed: %v", dead, err)
		}
		if err := c.checkAnswer(alive, "www.example.com", usClient, londonAddrs...); err != nil {
			t.Fatalf("with %v killed: %v", dead, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 4. Dallas repaired but 12 items behind: promote is refused.
	if err := c.be.SetBehind("dallas", 12); err != nil {
		t.Fatal(err)
	}
	if err := c.be.SetSite("dallas", true); err != nil {
		t.Fatal(err)
	}
	c.waitFor(moveWithin, "dallas up and resyncing, 12 behind", func() error {
		st, err := c.status(alive[0])
		if err != nil {
			return err
		}
		for _, s := range st.Sites {
			if s.Name == "dallas" {
				if s.Health != "up" || s.Sync != "resyncing" {
					return fmt.Errorf("dallas %s %s", s.Health, s.Sync)
				}
				// Every alive node's vote quotes the value it reads now,
				// not why its check first failed (connection refused while
				// the site was dark).
				n := 0
				for _, v := range s.SyncVotes {
					if !v.Fresh {
						continue
					}
					if v.Up || !strings.Contains(v.Reason, "items_behind = 12") {
						return fmt.Errorf("%s's sync vote: in sync %v, %q", v.Node, v.Up, v.Reason)
					}
					n++
				}
				if n < len(alive) {
					return fmt.Errorf("%d fresh sync votes, want %d", n, len(alive))
				}
				return nil
			}
		}
		return fmt.Errorf("no site dallas")
	})
	code, out, errOut = c.failoverctl(alive, "promote", "dallas")
	if code != 1 {
		t.Fatalf("promote dallas while 12 behind: exit %d, want 1\n%s%s", code, out, errOut)
	}
	msg := out + errOut
	if !strings.Contains(msg, "sync") || !strings.Contains(msg, "12") {
		t.Errorf("the refusal must name the sync check and the value 12: %q", msg)
	}
	if err := c.checkAnswer(alive, "cas.example.com", noECS, laAddrs...); err != nil {
		t.Errorf("a refused promote moved something: %v", err)
	}

	// The killed nodes come back and catch up.
	for _, id := range dead {
		c.start(id)
	}
	c.waitReady(all...)
	c.waitAnswer(moveWithin, all, "cas.example.com", noECS, laAddrs...)

	// 5. In sync again: promote succeeds; all six answer Dallas.
	if err := c.be.SetBehind("dallas", 0); err != nil {
		t.Fatal(err)
	}
	c.waitFor(moveWithin, "dallas in sync", func() error {
		st, err := c.status("ns1")
		if err != nil {
			return err
		}
		for _, s := range st.Sites {
			if s.Name == "dallas" && s.Sync != "in_sync" {
				return fmt.Errorf("dallas %s", s.Sync)
			}
		}
		return nil
	})
	code, out, errOut = c.failoverctl(nil, "promote", "dallas", "--wait")
	if code != 0 {
		t.Fatalf("promote dallas in sync: exit %d\n%s%s", code, out, errOut)
	}
	if err := c.checkAnswer(all, "cas.example.com", noECS, dallasAddrs...); err != nil {
		t.Errorf("after promote --wait: %v", err)
	}
	c.checkMX(all, dallasAddrs)

	// The history has every step, with the operator as actor.
	st, err = c.status("ns3")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, h := range slices.Backward(st.History) {
		if h.Kind == "command" {
			if h.Actor != "operator" || !strings.Contains(h.Reason, h.What) {
				t.Errorf("command %s by %q because %q, want the token's name and the command", h.What, h.Actor, h.Reason)
			}
			cmds = append(cmds, h.What+" "+h.Service+" "+h.From+"->"+h.To)
		}
	}
	// promote moves every route where dallas is preferred: cas, and www
	// (which had failed over to london by itself).
	want := []string{"failover cas dallas->losangeles", "promote cas losangeles->dallas", "promote www london->dallas"}
	slices.Sort(cmds[1:])
	if !slices.Equal(cmds, want) {
		for _, h := range st.History {
			t.Logf("history: %+v", h)
		}
		t.Errorf("commands in the history: %q, want %q (the refused promote moved nothing)", cmds, want)
	}
}

// TestDrillAuto is the same story with failover and fail-back automatic:
// nobody types anything; the fail-back still waits for the sync check and
// stable_for.
func TestDrillAuto(t *testing.T) {
	if testing.Short() {
		t.Skip("six processes: not in -short")
	}
	c := startLab(t, lab.Options{Net: 4, CASFailover: "auto", CASFailback: "auto"})
	all := c.ids()
	c.waitAnswer(moveWithin, all, "cas.example.com", noECS, dallasAddrs...)

	if err := c.be.SetSite("dallas", false); err != nil {
		t.Fatal(err)
	}
	c.waitAnswer(moveWithin, all, "cas.example.com", noECS, laAddrs...)
	c.waitCondition(moveWithin, all, "cas", "losangeles", "failed_over")
	// The leader counted the moves it proposed, by kind and result.
	c.waitFor(moveWithin, "a committed failover move counted", func() error {
		var errs []string
		for _, id := range all {
			err := c.metricPrefix(id, `geodnsd_cluster_decision_moves_total{kind="failover",result="committed"} `)
			if err == nil {
				return nil
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	})

	// Repaired but behind: no fail-back, however long it is up (twice
	// stable_for here).
	if err := c.be.SetBehind("dallas", 12); err != nil {
		t.Fatal(err)
	}
	if err := c.be.SetSite("dallas", true); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	c.waitFor(moveWithin, "dallas up", func() error {
		st, err := c.status("ns2")
		if err != nil {
			return err
		}
		for _, s := range st.Sites {
			if s.Name == "dallas" && (s.Health != "up" || s.Sync != "resyncing") {
				return fmt.Errorf("dallas %s %s", s.Health, s.Sync)
			}
		}
		return nil
	})
	for time.Since(up) < 20*time.Second {
		if err := c.checkAnswer(all, "cas.example.com", noECS, laAddrs...); err != nil {
			t.Fatalf("fail-back before the sync check passed: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// In sync: the fail-back comes by itself, after stable_for.
	synced := time.Now()
	if err := c.be.SetBehind("dallas", 0); err != nil {
		t.Fatal(err)
	}
	c.waitAnswer(moveWithin+10*time.Second, all, "cas.example.com", noECS, dallasAddrs...)
	if d := time.Since(synced); d < 10*time.Second {
		t.Errorf("fail-back %s after the sync check passed, before stable_for (10s)", d)
	}
	st, err := c.status("ns1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.History {
		if h.Kind == "command" {
			t.Errorf("nobody typed anything, but the history has a command: %+v", h)
		}
	}
}

// TestDrillFlapping shows that a flapping site produces at most one decision
// per hold-down window: down long enough to fail www over (interval × fall +
// down_for ≈ 5 s), never up for stable_for (10 s), so the one failover is
// all that happens however long it flaps.
func TestDrillFlapping(t *testing.T) {
	if testing.Short() {
		t.Skip("six processes: not in -short")
	}
	c := startLab(t, lab.Options{Net: 6})
	all := c.ids()
	c.waitAnswer(moveWithin, all, "www.example.com", usClient, dallasAddrs...)
	start := time.Now()
	for i := range 6 {
		up := i%2 == 1
		if err := c.be.SetSite("dallas", up); err != nil {
			t.Fatal(err)
		}
		if up {
			time.Sleep(4 * time.Second)
		} else {
			time.Sleep(7 * time.Second)
		}
	}
	window := time.Since(start)
	st, err := c.status("ns1")
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for _, h := range st.History {
		if h.Kind == "decision" && h.Service == "www" {
			times = append(times, h.Time.Time)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 5*time.Second {
			t.Errorf("two www decisions %s apart, within min_interval (5s): %v", gap, times)
		}
	}
	if len(times) == 0 {
		t.Errorf("no www decision at all in %s of flapping: the test shows nothing", window)
	}
	if max := int(window/(5*time.Second)) + 1; len(times) > max {
		t.Errorf("%d www decisions in %s, want at most %d", len(times), window, max)
	}
	t.Logf("%d www decisions in %s of flapping", len(times), window)
}

// metrics returns node id's /metrics text.
func (c *labCluster) metrics(id string) (string, error) {
	resp, err := http.Get("http://" + c.node(id).HTTP.String() + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// metric fails unless node id's /metrics has the line want.
func (c *labCluster) metric(id, want string) error {
	return c.metricPrefix(id, want+"\n")
}

// metricPrefix fails unless node id's /metrics has a line starting with prefix.
func (c *labCluster) metricPrefix(id, prefix string) error {
	text, err := c.metrics(id)
	if err != nil {
		return err
	}
	if !strings.Contains(text, "\n"+prefix) {
		return fmt.Errorf("no %q in %s's metrics", strings.TrimSpace(prefix), id)
	}
	return nil
}

// checkMX asks every node for example.com MX and wants the MX target's
// current addresses (a service name) in the additional section.
func (c *labCluster) checkMX(ids []string, want []string) {
	c.t.Helper()
	for _, id := range ids {
		_, r, err := c.answer(id, "example.com", dns.TypeMX, noECS)
		if err != nil {
			c.t.Errorf("%s MX: %v", id, err)
			continue
		}
		var add []string
		for _, rr := range r.Extra {
			if a, ok := rr.(*dns.A); ok && a.Hdr.Name == "mail.example.com." {
				add = append(add, a.A.String())
			}
		}
		slices.Sort(add)
		if len(r.Answer) != 1 || !slices.Equal(add, want) {
			c.t.Errorf("%s: MX answer %v, additional addresses of mail.example.com %v, want %v", id, r.Answer, add, want)
		}
	}
}
