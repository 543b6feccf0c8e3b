package web

import (
	"fmt"
	"slices"
	"strings"

	"github.com/geodnsd/geodnsd/web/api"
)

// The Atlassian Statuspage public API v2 (web/testdata/statuspage-v2.md), as status
// aggregators read it: a service is a component, a failover episode (from a
// route leaving its preferred site until every route of the service is back)
// is an incident. Unknown times are null, as Statuspage writes them.

type spPage struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	URL       string   `json:"url"`
	TimeZone  string   `json:"time_zone"`
	UpdatedAt api.Time `json:"updated_at"`
}

type spStatus struct {
	Indicator   string `json:"indicator"`
	Description string `json:"description"`
}

type spComponent struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Status             string   `json:"status"`
	CreatedAt          api.Time `json:"created_at"`
	UpdatedAt          api.Time `json:"updated_at"`
	Position           int      `json:"position"`
	Description        *string  `json:"description"`
	Showcase           bool     `json:"showcase"`
	StartDate          *string  `json:"start_date"`
	GroupID            *string  `json:"group_id"`
	PageID             string   `json:"page_id"`
	Group              bool     `json:"group"`
	OnlyShowIfDegraded bool     `json:"only_show_if_degraded"`
}

type spUpdate struct {
	ID         string   `json:"id"`
	Status     string   `json:"status"`
	Body       string   `json:"body"`
	CreatedAt  api.Time `json:"created_at"`
	UpdatedAt  api.Time `json:"updated_at"`
	DisplayAt  api.Time `json:"display_at"`
	IncidentID string   `json:"incident_id"`
}

type spIncident struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Status          string        `json:"status"`
	Impact          string        `json:"impact"`
	Shortlink       string        `json:"shortlink"`
	CreatedAt       api.Time      `json:"created_at"`
	UpdatedAt       api.Time      `json:"updated_at"`
	StartedAt       api.Time      `json:"started_at"`
	MonitoringAt    api.Time      `json:"monitoring_at"`
	ResolvedAt      api.Time      `json:"resolved_at"`
	PageID          string        `json:"page_id"`
	IncidentUpdates []spUpdate    `json:"incident_updates"`
	Components      []spComponent `json:"components"`
}

type spStatusDoc struct {
	Page   spPage   `json:"page"`
	Status spStatus `json:"status"`
}

type spComponentsDoc struct {
	Page       spPage        `json:"page"`
	Components []spComponent `json:"components"`
}

type spIncidentsDoc struct {
	Page      spPage       `json:"page"`
	Incidents []spIncident `json:"incidents"`
}

type spMaintenancesDoc struct {
	Page                  spPage `json:"page"`
	ScheduledMaintenances []any  `json:"scheduled_maintenances"`
}

type spSummaryDoc struct {
	Page                  spPage        `json:"page"`
	Components            []spComponent `json:"components"`
	Incidents             []spIncident  `json:"incidents"`
	ScheduledMaintenances []any         `json:"scheduled_maintenances"`
	Status                spStatus      `json:"status"`
}

// Component statuses, ranked from best to worst.
var componentRank = map[string]int{
	"operational": 0, "under_maintenance": 1, "degraded_performance": 2, "partial_outage": 3, "major_outage": 4,
}

// routeComponentStatus maps one route onto a component status: major_outage
// when all down; partial_outage when stranded (its active site is drained
// and no other can take over); under_maintenance when its preferred site is drained (a
// planned move); partial_outage while an operator must act (the active site
// is down or drained, clients still get its addresses); degraded_performance
// when it is not on its preferred site (failed over, or waiting for the
// preferred site to resync); operational otherwise.
func routeComponentStatus(r api.Route, sites map[string]api.Site) string {
	switch {
	case r.Condition == "all_down":
		return "major_outage"
	case r.Condition == "stranded":
		return "partial_outage"
	case len(r.Sites) > 0 && sites[r.Sites[0]].Admin == "drained":
		return "under_maintenance"
	case r.Condition == "awaiting_operator":
		return "partial_outage"
	case len(r.Sites) > 0 && r.Active != r.Sites[0]:
		return "degraded_performance"
	}
	return "operational"
}

// statuspage renders the Statuspage documents from the status document.
type statuspage struct {
	page       spPage
	status     spStatus
	components []spComponent
	incidents  []spIncident // newest first
}

const maxIncidents = 50

// statuspageOf: hist is the whole history, newest first.
func statuspageOf(st *api.Status, hist []api.HistoryEntry, name, url string) *statuspage {
	pageID := "geodnsd"
	sp := &statuspage{page: spPage{ID: pageID, Name: name, URL: url, TimeZone: "Etc/UTC"}}
	sites := map[string]api.Site{}
	for _, s := range st.Sites {
		sites[s.Name] = s
	}
	comp := map[string]spComponent{}
	worst, majors := 0, 0
	for i, svc := range st.Services {
		status := "operational"
		var created, updated api.Time
		for _, r := range svc.Routes {
			if s := routeComponentStatus(r, sites); componentRank[s] > componentRank[status] {
				status = s
			}
			for _, t := range []api.Time{r.Since, r.ConditionSince} {
				if !t.IsZero() && (created.IsZero() || t.Before(created.Time)) {
					created = t
				}
				if t.After(updated.Time) {
					updated = t
				}
			}
		}
		var active []string
		for _, r := range svc.Routes {
			active = append(active, r.Name+": "+r.Active)
		}
		desc := strings.Join(svc.Names, ", ") + " (" + strings.Join(active, "; ") + ")"
		c := spComponent{ID: componentID(svc.Name), Name: svc.Name, Status: status, CreatedAt: created, UpdatedAt: updated,
			Position: i + 1, Description: &desc, PageID: pageID}
		sp.components = append(sp.components, c)
		comp[svc.Name] = c
		worst = max(worst, componentRank[status])
		if status == "major_outage" {
			majors++
		}
	}
	if sp.components == nil {
		sp.components = []spComponent{}
	}
	switch {
	case majors > 0 && majors == len(st.Services):
		sp.status = spStatus{"critical", "Major System Outage"}
	case worst == componentRank["major_outage"]:
		sp.status = spStatus{"major", "Major Service Outage"}
	case worst == componentRank["partial_outage"]:
		sp.status = spStatus{"major", "Partial System Outage"}
	case worst == componentRank["degraded_performance"]:
		sp.status = spStatus{"minor", "Partially Degraded Service"}
	case !st.Quorum || st.Halted != "":
		sp.status = spStatus{"minor", "Control plane without quorum: answers keep the last agreed state"}
	case worst == componentRank["under_maintenance"]:
		sp.status = spStatus{"none", "Service Under Maintenance"}
	default:
		sp.status = spStatus{"none", "All Systems Operational"}
	}
	sp.incidents = incidentsOf(st, hist, comp, pageID, url)
	// The page was last updated when a component or an incident last was:
	// not at every tick of the state (state_time), so the documents keep
	// their bytes and ETag while nothing they show changes, and nodes with
	// the same state serve the same bytes. Without either (no state yet) it
	// is generated_at.
	for _, c := range sp.components {
		sp.page.UpdatedAt = later(sp.page.UpdatedAt, c.UpdatedAt)
	}
	if len(hist) > 0 {
		sp.page.UpdatedAt = later(sp.page.UpdatedAt, hist[0].Time)
	}
	if sp.page.UpdatedAt.IsZero() {
		sp.page.UpdatedAt = st.GeneratedAt
	}
	return sp
}

func later(a, b api.Time) api.Time {
	if b.After(a.Time) {
		return b
	}
	return a
}

func componentID(service string) string { return "svc-" + service }

// incidentsOf walks the history oldest first. An incident opens when a
// route of a service leaves its preferred site, collects every later entry of
// that service, and is resolved by the entry that puts the last of its
// routes back on its preferred site. A route is assumed on its preferred site
// before the oldest entry kept.
func incidentsOf(st *api.Status, hist []api.HistoryEntry, comp map[string]spComponent, pageID, url string) []spIncident {
	preferred := map[[2]string]string{}
	current := map[string]api.Service{}
	for _, s := range st.Services {
		current[s.Name] = s
		for _, r := range s.Routes {
			if len(r.Sites) > 0 {
				preferred[[2]string{s.Name, r.Name}] = r.Sites[0]
			}
		}
	}
	active := map[[2]string]string{}
	open := map[string]*spIncident{}
	var all []*spIncident
	offPreferred := func(svc string) bool {
		for k, a := range active {
			if k[0] == svc && a != preferred[k] {
				return true
			}
		}
		return false
	}
	for i := len(hist) - 1; i >= 0; i-- { // newest first
		e := hist[i]
		if e.Service == "" {
			continue
		}
		key := [2]string{e.Service, e.Route}
		inc := open[e.Service]
		if e.To != "" && e.Route != "" {
			active[key] = e.To
		}
		off := offPreferred(e.Service)
		if inc == nil {
			if !off {
				continue
			}
			inc = &spIncident{ID: fmt.Sprintf("%s-%d", e.Service, e.Seq), Status: "monitoring", Impact: "minor",
				Shortlink: url, CreatedAt: e.Time, StartedAt: e.Time, PageID: pageID,
				Name: fmt.Sprintf("%s moved from %s to %s", e.Service, e.From, e.To)}
			if c, ok := comp[e.Service]; ok {
				inc.Components = []spComponent{c}
			} else {
				inc.Components = []spComponent{}
			}
			open[e.Service] = inc
			all = append(all, inc)
		}
		status := "monitoring"
		if !off {
			status = "resolved"
			inc.Status, inc.ResolvedAt = status, e.Time
			delete(open, e.Service)
		}
		inc.UpdatedAt = e.Time
		inc.IncidentUpdates = append(inc.IncidentUpdates, spUpdate{ID: fmt.Sprintf("%s-%d", inc.ID, e.Seq),
			Status: status, Body: entryText(e), CreatedAt: e.Time, UpdatedAt: e.Time, DisplayAt: e.Time, IncidentID: inc.ID})
	}
	// Open incidents take the service's present condition.
	for svc, inc := range open {
		for _, r := range current[svc].Routes {
			switch r.Condition {
			case "all_down":
				inc.Status, inc.Impact = "investigating", "critical"
			case "awaiting_operator", "stranded":
				if inc.Impact != "critical" {
					inc.Status, inc.Impact = "investigating", "major"
				}
			}
		}
		if inc.Status == "monitoring" {
			inc.MonitoringAt = inc.CreatedAt
		}
		if n := len(inc.IncidentUpdates); n > 0 {
			inc.IncidentUpdates[n-1].Status = inc.Status
		}
	}
	out := make([]spIncident, 0, min(len(all), maxIncidents))
	for i := len(all) - 1; i >= 0 && len(out) < maxIncidents; i-- {
		inc := *all[i]
		slices.Reverse(inc.IncidentUpdates) // newest first, as Statuspage lists them
		out = append(out, inc)
	}
	return out
}

// entryText is a history entry as one line for a person.
func entryText(e api.HistoryEntry) string {
	var b strings.Builder
	switch e.Kind {
	case "decision":
		b.WriteString("Automatic decision")
	case "config":
		b.WriteString("Configuration change")
	default:
		b.WriteString("Operator command " + e.What)
	}
	if e.Actor != "" {
		fmt.Fprintf(&b, " by %s", e.Actor)
	}
	if e.Service != "" && e.Route != "" {
		fmt.Fprintf(&b, ": %s/%s", e.Service, e.Route)
	} else if e.Site != "" {
		fmt.Fprintf(&b, ": %s", e.Site)
	}
	if e.From != "" || e.To != "" {
		fmt.Fprintf(&b, " %s → %s", e.From, e.To)
	}
	if e.Epoch != 0 {
		fmt.Fprintf(&b, " (epoch %d)", e.Epoch)
	}
	if e.Forced {
		b.WriteString(", forced")
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if e.Note != "" {
		fmt.Fprintf(&b, " (%s)", e.Note)
	}
	return b.String()
}

func (sp *statuspage) unresolved() []spIncident {
	out := []spIncident{}
	for _, i := range sp.incidents {
		if i.Status != "resolved" && i.Status != "postmortem" {
			out = append(out, i)
		}
	}
	return out
}
