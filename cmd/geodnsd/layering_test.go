package main

import (
	"os/exec"
	"strings"
	"testing"
)

// layers is DESIGN.md §3's import order, highest first: a package may import
// only packages listed after it. dnsserver is the socket side split out of
// zones; e2e holds the tests that drive whole processes; lab is the six-node
// lab that `geodnsd -demo` runs and the drill test starts as processes; node
// is the assembly of one process; bench/servicesd is the benchmark harness
// of service answers.
var layers = []string{
	"e2e", "bench/servicesd", "bench/udpfloor", "cmd/geodnsd", "cmd/failoverctl", "lab", "node", "web", "web/api", "cluster", "dnsserver", "zones",
	"health", "geo", "failover", "config", "deploy",
}

// owners lists the only project packages allowed to depend on a third-party module.
var owners = map[string][]string{
	// health's dns check is a client: miekg/dns there too (issue 10: one
	// DNS library where speed does not demand our own code).
	"github.com/miekg/dns":                 {"zones", "dnsserver", "health"},
	"github.com/hashicorp/raft":            {"cluster"},
	"github.com/oschwald/geoip2-golang/v2": {"geo"},
	"github.com/go-chi/chi/v5":             {"web"},
}

func TestImportGraph(t *testing.T) {
	const mod = "github.com/geodnsd/geodnsd/"
	out, err := exec.Command("go", "list", "-f", `{{if .GoFiles}}{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{end}}`, "../../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	rank := map[string]int{}
	for i, l := range layers {
		rank[l] = i
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue // a test-only package
		}
		pkg := strings.TrimPrefix(f[0], mod)
		pr, known := rank[pkg]
		if !known {
			t.Errorf("package %s is not in the layer list of DESIGN.md §3 (add it to layers on purpose)", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) {
				dep := strings.TrimPrefix(imp, mod)
				if dr, ok := rank[dep]; !ok || dr <= pr {
					t.Errorf("%s imports %s: a lower package must not import a higher one", pkg, dep)
				}
				continue
			}
			for lib, allowed := range owners {
				if (imp == lib || strings.HasPrefix(imp, lib+"/")) && !contains(allowed, pkg) {
					t.Errorf("%s imports %s: only %v may", pkg, imp, allowed)
				}
			}
		}
	}
	// failover is pure: the standard library only.
	out, err = exec.Command("go", "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{end}}`, "../../failover").CombinedOutput()
	if err != nil {
		t.Fatalf("go list failover: %v\n%s", err, out)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 {
		t.Errorf("failover depends on %v; it must use the standard library only", deps)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
