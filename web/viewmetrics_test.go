package web

import (
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestViewMetrics(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	e.failedOverAndResyncing()
	e.apply(failover.Beat{Time: t0.Add(4 * time.Minute), Node: "ns2", Digest: "sha256:other"})
	want := `
# HELP geodnsd_failover_route_active 1 for the route's active site, 0 for its other sites.
# TYPE geodnsd_failover_route_active gauge
geodnsd_failover_route_active{route="default",service="cas",site="dallas"} 0
geodnsd_failover_route_active{route="default",service="cas",site="losangeles"} 1
# HELP geodnsd_failover_route_condition 1 for the route's present condition (normal, failed_over, frozen, awaiting_operator, stranded, all_down), 0 for the others.
# TYPE geodnsd_failover_route_condition gauge
geodnsd_failover_route_condition{condition="all_down",route="default",service="cas"} 0
geodnsd_failover_route_condition{condition="awaiting_operator",route="default",service="cas"} 0
geodnsd_failover_route_condition{condition="failed_over",route="default",service="cas"} 1
geodnsd_failover_route_condition{condition="frozen",route="default",service="cas"} 0
geodnsd_failover_route_condition{condition="normal",route="default",service="cas"} 0
geodnsd_failover_route_condition{condition="stranded",route="default",service="cas"} 0
# HELP geodnsd_failover_route_epoch The route's epoch: it increments with each decision or command that moves it.
# TYPE geodnsd_failover_route_epoch gauge
geodnsd_failover_route_epoch{route="default",service="cas"} 1
# HELP geodnsd_failover_site_sync 1 for the site's sync state (in_sync, resyncing, unknown), 0 for the others.
# TYPE geodnsd_failover_site_sync gauge
geodnsd_failover_site_sync{site="dallas",sync="in_sync"} 0
geodnsd_failover_site_sync{site="dallas",sync="resyncing"} 1
geodnsd_failover_site_sync{site="dallas",sync="unknown"} 0
geodnsd_failover_site_sync{site="losangeles",sync="in_sync"} 1
geodnsd_failover_site_sync{site="losangeles",sync="resyncing"} 0
geodnsd_failover_site_sync{site="losangeles",sync="unknown"} 0
# HELP geodnsd_failover_site_sync_since_timestamp_seconds When the site's sync state last changed (Unix time).
# TYPE geodnsd_failover_site_sync_since_timestamp_seconds gauge
geodnsd_failover_site_sync_since_timestamp_seconds{site="dallas"} 1.79604012e+09
geodnsd_failover_site_sync_since_timestamp_seconds{site="losangeles"} 1.79604e+09
# HELP geodnsd_failover_config_mismatch 1 when fresh nodes report different config digests.
# TYPE geodnsd_failover_config_mismatch gauge
geodnsd_failover_config_mismatch 1
# HELP geodnsd_failover_frozen 1 while automatic decisions are frozen cluster-wide (failoverctl freeze).
# TYPE geodnsd_failover_frozen gauge
geodnsd_failover_frozen 0
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want),
		"geodnsd_failover_route_active", "geodnsd_failover_route_condition", "geodnsd_failover_route_epoch",
		"geodnsd_failover_site_sync", "geodnsd_failover_site_sync_since_timestamp_seconds",
		"geodnsd_failover_config_mismatch", "geodnsd_failover_frozen"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(mustGet(t, e, "/metrics"), `geodnsd_failover_endpoint_votes{endpoint="dal1",site="dallas",vote="up"} 6`) {
		t.Error("/metrics lacks the endpoint votes")
	}
	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
