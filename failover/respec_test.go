package failover

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRespec(t *testing.T) {
	h := newHarness(t, threeSiteSpec(Auto, Manual))
	h.allUp(at(0))
	h.mustCmd(Command{Time: at(time.Minute), Op: OpDrain, Site: "dallas", Actor: "alice"})
	h.mustCmd(Command{Time: at(2 * time.Minute), Op: OpMode, Service: "cas", Failback: Auto})
	h.wantRoute("cas", "default", "losangeles", 1, FailedOver)
	before, _ := MarshalSnapshot(h.s)

	t.Run("same spec: same state", func(t *testing.T) {
		n, err := Respec(h.s, threeSiteSpec(Auto, Manual), at(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := MarshalSnapshot(n); !bytes.Equal(got, before) {
			t.Fatalf("respec with the same spec changed the state:\n%s\n%s", got, before)
		}
	})
	t.Run("route loses its active site", func(t *testing.T) {
		sp := threeSiteSpec(Auto, Manual)
		sp.Sites = append(sp.Sites, SiteSpec{Name: "paris", Endpoints: eps("192.0.2.99")})
		sp.Nodes = append(sp.Nodes[:len(sp.Nodes):len(sp.Nodes)], "ns7")
		sp.Services[0].Routes[0].Sites = []string{"dallas", "paris", "london"}
		n, err := Respec(h.s, sp, at(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		h2 := &harness{t: t, s: n}
		// dallas is still drained; london is up, in sync and stable, paris is
		// unknown: london takes over, as a failover would.
		h2.wantRoute("cas", "default", "london", 2, FailedOver)
		h2.wantSite("dallas", Up, InSync)
		if h2.siteStatus("dallas").Admin != Drained {
			t.Fatal("drain lost")
		}
		h2.wantSite("paris", HealthUnknown, SyncUnknown) // new, serving nothing
		if p := n.Status().Services[0].Policy; p.Failback != Auto {
			t.Fatalf("operator mode lost: %+v", p)
		}
		e := n.history[len(n.history)-1]
		if e.Kind != KindConfig || e.From != "losangeles" || e.To != "london" || e.Epoch != 2 {
			t.Fatalf("entry = %+v", e)
		}
		if len(n.Status().Nodes) != 7 || n.Status().FreshNodes != 6 {
			t.Fatalf("nodes = %+v", n.Status().Nodes)
		}
	})
	t.Run("policy changed in the spec: operator mode dropped", func(t *testing.T) {
		sp := threeSiteSpec(Auto, Manual)
		sp.Services[0].Policy.DownFor = time.Minute
		n, err := Respec(h.s, sp, at(3*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if p := n.Status().Services[0].Policy; p.Failback != Manual || p.DownFor != time.Minute {
			t.Fatalf("policy = %+v", p)
		}
	})
	t.Run("invalid spec", func(t *testing.T) {
		sp := threeSiteSpec(Auto, Manual)
		sp.Services[0].Routes[0].Sites[1] = "paris"
		_, err := Respec(h.s, sp, at(3*time.Minute))
		if err == nil || !strings.Contains(err.Error(), `services.cas.routes.default.sites[1]: unknown site "paris"`) {
			t.Fatalf("err = %v", err)
		}
	})
	if after, _ := MarshalSnapshot(h.s); !bytes.Equal(after, before) {
		t.Fatal("Respec changed the old state")
	}
}

// The audit entry of a respec names what changed, by kind.
func TestSpecChanges(t *testing.T) {
	o, _ := normalize(storySpec(Auto, Manual))
	if got := specChanges(o, o); got != "" {
		t.Errorf("same spec: %q", got)
	}
	sp := storySpec(Auto, Manual)
	sp.Sites[0].Endpoints = eps("192.0.2.10")                                              // dallas changed
	sp.Sites = append(sp.Sites[:2], SiteSpec{Name: "paris", Endpoints: eps("192.0.2.99")}) // london removed, paris added
	sp.Services[0].TTL = time.Minute
	sp.Services = append(sp.Services, ServiceSpec{Name: "shop", Names: []string{"shop.example.com."},
		Routes: []RouteSpec{{Name: "default", Sites: []string{"paris"}}}})
	sp.Nodes = nodes6[:5]
	sp.VoteTTL = time.Hour
	n, err := normalize(sp)
	if err != nil {
		t.Fatal(err)
	}
	want := "sites added: paris; sites removed: london; sites changed: dallas; services added: shop; services changed: cas; voters: " +
		strings.Join(nodes6[:5], ", ") + "; cluster settings changed"
	if got := specChanges(o, n); got != want {
		t.Errorf("specChanges:\n got %q\nwant %q", got, want)
	}
}
