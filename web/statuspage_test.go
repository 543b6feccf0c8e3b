package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geodnsd/geodnsd/failover"
)

// A Statuspage client written from testdata/statuspage-v2.md alone.
type (
	clPage struct {
		ID        string     `json:"id"`
		Name      string     `json:"name"`
		URL       string     `json:"url"`
		TimeZone  string     `json:"time_zone"`
		UpdatedAt *time.Time `json:"updated_at"`
	}
	clStatus struct {
		Indicator   string `json:"indicator"`
		Description string `json:"description"`
	}
	clComponent struct {
		ID                 string     `json:"id"`
		Name               string     `json:"name"`
		Status             string     `json:"status"`
		CreatedAt          *time.Time `json:"created_at"`
		UpdatedAt          *time.Time `json:"updated_at"`
		Position           int        `json:"position"`
		Description        *string    `json:"description"`
		Showcase           bool       `json:"showcase"`
		StartDate          *string    `json:"start_date"`
		GroupID            *string    `json:"group_id"`
		PageID             string     `json:"page_id"`
		Group              bool       `json:"group"`
		OnlyShowIfDegraded bool       `json:"only_show_if_degraded"`
	}
	clUpdate struct {
		ID         string     `json:"id"`
		Status     string     `json:"status"`
		Body       string     `json:"body"`
		CreatedAt  *time.Time `json:"created_at"`
		UpdatedAt  *time.Time `json:"updated_at"`
		DisplayAt  *time.Time `json:"display_at"`
		IncidentID string     `json:"incident_id"`
	}
	clIncident struct {
		ID              string        `json:"id"`
		Name            string        `json:"name"`
		Status          string        `json:"status"`
		Impact          string        `json:"impact"`
		Shortlink       string        `json:"shortlink"`
		CreatedAt       *time.Time    `json:"created_at"`
		UpdatedAt       *time.Time    `json:"updated_at"`
		StartedAt       *time.Time    `json:"started_at"`
		MonitoringAt    *time.Time    `json:"monitoring_at"`
		ResolvedAt      *time.Time    `json:"resolved_at"`
		PageID          string        `json:"page_id"`
		IncidentUpdates []clUpdate    `json:"incident_updates"`
		Components      []clComponent `json:"components"`
	}
	clDoc struct {
		Page                  *clPage       `json:"page"`
		Status                *clStatus     `json:"status"`
		Components            []clComponent `json:"components"`
		Incidents             []clIncident  `json:"incidents"`
		ScheduledMaintenances []clIncident  `json:"scheduled_maintenances"`
	}
)

// spec reads testdata/statuspage-v2.md: "name: a b c" lines of its Fields,
// Documents and Values sections.
func readSpec(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("testdata/statuspage-v2.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	section := ""
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "## ") {
			section = l
			continue
		}
		if section == "" || strings.HasPrefix(section, "## geodnsd") || strings.HasPrefix(l, "-") {
			continue
		}
		if k, v, ok := strings.Cut(l, ": "); ok && !strings.Contains(k, " ") {
			out[k] = strings.Fields(v)
		}
	}
	if len(out["component"]) < 13 || len(out["incident"]) < 13 {
		t.Fatalf("testdata/statuspage-v2.md not understood: %v", out)
	}
	return out
}

// wantKeys checks that obj has every field the spec lists for kind.
func wantKeys(t *testing.T, where string, obj any, fields []string) {
	t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		t.Errorf("%s is %T, not an object", where, obj)
		return
	}
	for _, f := range fields {
		if _, ok := m[f]; !ok {
			t.Errorf("%s lacks %q", where, f)
		}
	}
}

// fetchSP fetches one Statuspage document, checks its shape against the
// spec (every field present, no field the client does not know, values in
// their published sets), and decodes it.
func fetchSP(t *testing.T, e *env, spec map[string][]string, doc string) clDoc {
	t.Helper()
	body := mustGet(t, e, "/api/v2/"+doc)
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	keys := spec[doc]
	if strings.HasPrefix(doc, "incidents") {
		keys = spec["incidents.json"]
	}
	var got []string
	for k := range raw {
		got = append(got, k)
	}
	slices.Sort(got)
	want := slices.Clone(keys)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s keys = %v, want %v", doc, got, want)
	}
	wantKeys(t, doc+".page", raw["page"], spec["page"])
	if s, ok := raw["status"]; ok {
		wantKeys(t, doc+".status", s, spec["status"])
	}
	for _, c := range asList(raw["components"]) {
		wantKeys(t, doc+".components[]", c, spec["component"])
	}
	for _, i := range asList(raw["incidents"]) {
		wantKeys(t, doc+".incidents[]", i, spec["incident"])
		for _, u := range asList(i.(map[string]any)["incident_updates"]) {
			wantKeys(t, doc+".incidents[].incident_updates[]", u, spec["incident_update"])
		}
		for _, c := range asList(i.(map[string]any)["components"]) {
			wantKeys(t, doc+".incidents[].components[]", c, spec["component"])
		}
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	var d clDoc
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	if d.Page == nil || d.Page.ID == "" || d.Page.Name != "geodnsd" || d.Page.TimeZone != "Etc/UTC" || d.Page.UpdatedAt == nil {
		t.Errorf("%s page = %+v", doc, d.Page)
	}
	if d.Status != nil && !slices.Contains(spec["status.indicator"], d.Status.Indicator) {
		t.Errorf("%s indicator %q not in %v", doc, d.Status.Indicator, spec["status.indicator"])
	}
	for _, c := range d.Components {
		if !slices.Contains(spec["component.status"], c.Status) {
			t.Errorf("%s component status %q", doc, c.Status)
		}
	}
	for _, i := range d.Incidents {
		if !slices.Contains(spec["incident.status"], i.Status) || !slices.Contains(spec["incident.impact"], i.Impact) {
			t.Errorf("%s incident %q status %q impact %q", doc, i.ID, i.Status, i.Impact)
		}
		for _, u := range i.IncidentUpdates {
			if u.IncidentID != i.ID || !slices.Contains(spec["incident.status"], u.Status) {
				t.Errorf("%s update %+v of %s", doc, u, i.ID)
			}
		}
	}
	return d
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

type spWant struct {
	component, indicator string
	incidents            []string // status of each incident, newest first
	unresolved           int
}

func checkSP(t *testing.T, e *env, w spWant) []clIncident {
	t.Helper()
	spec := readSpec(t)
	st := fetchSP(t, e, spec, "status.json")
	sum := fetchSP(t, e, spec, "summary.json")
	comp := fetchSP(t, e, spec, "components.json")
	inc := fetchSP(t, e, spec, "incidents.json")
	unres := fetchSP(t, e, spec, "incidents/unresolved.json")
	maint := fetchSP(t, e, spec, "scheduled-maintenances.json")
	if st.Status.Indicator != w.indicator || sum.Status.Indicator != w.indicator {
		t.Errorf("indicator = %q/%q, want %q", st.Status.Indicator, sum.Status.Indicator, w.indicator)
	}
	if len(comp.Components) != 1 || comp.Components[0].Name != "cas" || comp.Components[0].Status != w.component ||
		comp.Components[0].ID != "svc-cas" || comp.Components[0].Position != 1 || comp.Components[0].PageID != comp.Page.ID {
		t.Errorf("components = %+v, want cas %s", comp.Components, w.component)
	}
	if !slices.EqualFunc(sum.Components, comp.Components, func(a, b clComponent) bool { return a.Status == b.Status && a.ID == b.ID }) {
		t.Errorf("summary components %+v != components %+v", sum.Components, comp.Components)
	}
	var got []string
	for _, i := range inc.Incidents {
		got = append(got, i.Status)
	}
	if !slices.Equal(got, w.incidents) {
		t.Errorf("incident statuses = %v, want %v", got, w.incidents)
	}
	if len(unres.Incidents) != w.unresolved || len(sum.Incidents) != w.unresolved {
		t.Errorf("unresolved = %d (summary %d), want %d", len(unres.Incidents), len(sum.Incidents), w.unresolved)
	}
	if maint.ScheduledMaintenances == nil || len(maint.ScheduledMaintenances) != 0 {
		t.Errorf("scheduled maintenances = %v", maint.ScheduledMaintenances)
	}
	return inc.Incidents
}

// TestStatuspageSchema walks the story through the Statuspage documents:
// normal, failed over (an incident opens), promoted back (resolved),
// awaiting an operator, drained, all down.
func TestStatuspageSchema(t *testing.T) {
	e := newEnv(t, failover.Manual, failover.Manual, nil)
	checkSP(t, e, spWant{component: "operational", indicator: "none"})

	e.failedOverAndResyncing()
	incs := checkSP(t, e, spWant{component: "degraded_performance", indicator: "minor", incidents: []string{"monitoring"}, unresolved: 1})
	inc := incs[0]
	if inc.Impact != "minor" || inc.ResolvedAt != nil || inc.MonitoringAt == nil || !inc.StartedAt.Equal(t0.Add(2*time.Minute)) ||
		len(inc.Components) != 1 || inc.Components[0].ID != "svc-cas" || len(inc.IncidentUpdates) != 1 ||
		!strings.Contains(inc.IncidentUpdates[0].Body, "failover by alice: cas/default dallas → losangeles (epoch 1): dallas flooded") {
		t.Errorf("incident = %+v", inc)
	}

	e.sync("dallas", true, "copy_queue_length=0", t0.Add(10*time.Minute))
	e.clock.Set(t0.Add(11 * time.Minute))
	if code, body := e.do("POST", "/api/v1/promote", opToken, `{"site":"dallas"}`); code != 200 {
		t.Fatalf("promote: %d %s", code, body)
	}
	incs = checkSP(t, e, spWant{component: "operational", indicator: "none", incidents: []string{"resolved"}})
	inc = incs[0]
	if inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(t0.Add(11*time.Minute)) || len(inc.IncidentUpdates) != 2 ||
		inc.IncidentUpdates[0].Status != "resolved" || !strings.Contains(inc.IncidentUpdates[0].Body, "promote") {
		t.Errorf("resolved incident = %+v", inc)
	}

	// Dallas down in manual mode: awaiting an operator after down_for.
	e.site("dallas", false, t0.Add(20*time.Minute))
	e.apply(failover.Tick{Time: t0.Add(21 * time.Minute)})
	checkSP(t, e, spWant{component: "partial_outage", indicator: "major", incidents: []string{"resolved"}})

	// Losangeles down too: all down.
	e.site("losangeles", false, t0.Add(22*time.Minute))
	e.apply(failover.Tick{Time: t0.Add(23 * time.Minute)})
	checkSP(t, e, spWant{component: "major_outage", indicator: "critical", incidents: []string{"resolved"}})
}

// TestStatuspageDrain: a planned drain is under_maintenance, and its
// incident resolves on undrain and fail-back.
func TestStatuspageDrain(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	e.clock.Set(t0.Add(time.Minute))
	if code, body := e.do("POST", "/api/v1/drain", opToken, `{"site":"dallas","reason":"disk swap"}`); code != 200 {
		t.Fatalf("drain: %d %s", code, body)
	}
	checkSP(t, e, spWant{component: "under_maintenance", indicator: "none", incidents: []string{"monitoring"}, unresolved: 1})
	e.clock.Set(t0.Add(2 * time.Minute))
	if code, body := e.do("POST", "/api/v1/undrain", opToken, `{"site":"dallas"}`); code != 200 {
		t.Fatalf("undrain: %d %s", code, body)
	}
	checkSP(t, e, spWant{component: "degraded_performance", indicator: "minor", incidents: []string{"monitoring"}, unresolved: 1})
	if code, body := e.do("POST", "/api/v1/promote", opToken, `{"site":"dallas"}`); code != 200 {
		t.Fatalf("promote: %d %s", code, body)
	}
	checkSP(t, e, spWant{component: "operational", indicator: "none", incidents: []string{"resolved"}})
}

// TestStatuspageStranded: a forced drain of the only healthy site leaves the
// route stranded on it: a partial outage, red on the page.
func TestStatuspageStranded(t *testing.T) {
	e := newEnv(t, failover.Auto, failover.Manual, nil)
	e.site("losangeles", false, t0.Add(time.Minute))
	e.clock.Set(t0.Add(2 * time.Minute))
	if code, body := e.do("POST", "/api/v1/drain", opToken, `{"site":"dallas","force":true,"reason":"power work"}`); code != 200 {
		t.Fatalf("forced drain: %d %s", code, body)
	}
	st := e.mem.View().State.Status()
	if c := st.Services[0].Routes[0].Condition; c != failover.Stranded {
		t.Fatalf("condition = %s, want stranded", c)
	}
	checkSP(t, e, spWant{component: "partial_outage", indicator: "major"})
	if c := liClass(t, mustGet(t, e, "/"), "route-cas-default"); c != "r" {
		t.Errorf("stranded route is %q on the page, want r", c)
	}
}
