package web

import (
	_ "embed"
	"html/template"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/web/api"
)

// page.html is the human status page: one self-contained document (inline
// CSS, no script, no external asset) that refreshes itself.
//
//go:embed page.html
var pageSource string

// pageData is what page.html is executed with.
type pageData struct {
	Title   string
	Refresh int // seconds
	S       *api.Status
	Sites   map[string]api.Site // by name
}

// Colours: g (green) all is well, a (amber) degraded or unknown, r (red) down
// or needs an operator.
func healthClass(h string) string {
	switch h {
	case "up":
		return "g"
	case "down":
		return "r"
	}
	return "a"
}

func syncClass(s string) string {
	if s == "in_sync" {
		return "g"
	}
	return "a"
}

func siteClass(s api.Site) string {
	if s.Health == "down" {
		return "r"
	}
	if s.Health == "up" && s.Sync == "in_sync" && s.Admin == "active" {
		return "g"
	}
	return "a"
}

func routeClass(r api.Route) string {
	switch r.Condition {
	case "normal":
		return "g"
	case "all_down", "awaiting_operator", "stranded":
		return "r"
	}
	return "a"
}

func serviceClass(s api.Service) string {
	worst := "g"
	for _, r := range s.Routes {
		switch routeClass(r) {
		case "r":
			return "r"
		case "a":
			worst = "a"
		}
	}
	return worst
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"healthClass": healthClass, "syncClass": syncClass, "siteClass": siteClass,
	"routeClass": routeClass, "serviceClass": serviceClass,
	"join":  strings.Join,
	"entry": entryText,
	"rfc": func(t api.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"short": func(t api.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
}).Parse(pageSource))
