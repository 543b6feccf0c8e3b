package deploy_test

import (
	"bufio"
	"encoding"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/deploy"
)

// The embedded tree holds the demo. Every example is also parsed, loaded and
// served by node's TestExamplesServe, with the options geodnsd derives from it.
func TestExamplesEmbedded(t *testing.T) {
	ex := deploy.Examples()
	if _, err := fs.Stat(ex, deploy.DemoConfig); err != nil {
		t.Errorf("demo config: %v", err)
	}
	zones, err := fs.Glob(ex, "demo/zones/*.zone")
	if err != nil || len(zones) == 0 {
		t.Errorf("demo zones: %v %v", zones, err)
	}
}

// TestExamplesLoad loads every example configuration from disk, as an
// operator would (relative paths resolve next to the file), and wants no
// error and no warning: an example teaches what to write.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("examples/*/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Warnings) > 0 {
				t.Errorf("warnings:\n%s", strings.Join(c.Warnings, "\n"))
			}
		})
	}
}

// TestDemoShowsEveryKey: the demo configuration is the reference for the
// schema (README links to it), so every key of config.Config appears in it,
// written or commented, in its section. Check-type keys are the exception:
// config/testdata/health.toml shows each check type.
func TestDemoShowsEveryKey(t *testing.T) {
	src, err := fs.ReadFile(deploy.Examples(), deploy.DemoConfig)
	if err != nil {
		t.Fatal(err)
	}
	shown := shownKeys(string(src))
	var want []string
	schemaKeys(reflect.TypeOf(config.Config{}), "", &want)
	// Keys of inline tables, which decode by hand (UnmarshalTOML).
	want = append(want, "sites.*.endpoints.name", "sites.*.endpoints.address", "sites.*.endpoints.probe",
		"cluster.nodes.id", "cluster.nodes.raft", "cluster.nodes.http", "cluster.nodes.voter")
	sort.Strings(want)
	for _, k := range want {
		if strings.HasPrefix(k, "sites.*.checks.") || strings.HasPrefix(k, "sites.*.sync.") {
			continue
		}
		if !shown[k] {
			t.Errorf("%s: key %q is not shown (written or commented) in its section", deploy.DemoConfig, k)
		}
	}
	if len(want) < 60 {
		t.Errorf("only %d schema keys found: the reflection walk is broken", len(want))
	}
}

var (
	unmarshaler     = reflect.TypeOf((*toml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// schemaKeys lists the key paths of t's toml fields: maps of tables as
// NAME.*, arrays of tables without an index.
func schemaKeys(t reflect.Type, prefix string, out *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String {
			vt := ft.Elem()
			for vt.Kind() == reflect.Pointer {
				vt = vt.Elem()
			}
			if vt.Kind() == reflect.Struct {
				schemaKeys(vt, key+".*.", out)
				continue
			}
		}
		leaf := ft.Kind() != reflect.Struct || reflect.PointerTo(ft).Implements(unmarshaler) || reflect.PointerTo(ft).Implements(textUnmarshaler)
		if leaf {
			*out = append(*out, key)
			continue
		}
		schemaKeys(ft, key+".", out)
	}
}

var (
	headerRE = regexp.MustCompile(`^\[\[?([a-z0-9_.-]+)\]\]?`)
	keyRE    = regexp.MustCompile(`^([a-z0-9_]+)\s*=`)
	inlineRE = regexp.MustCompile(`[{,]\s*([a-z0-9_]+)\s*=`)
	mapNames = regexp.MustCompile(`^(sites|services)\.[a-z0-9-]+`)
)

// shownKeys reads TOML text, commented lines included, and returns the key
// paths written in it, with site and service names as *.
func shownKeys(src string) map[string]bool {
	shown := map[string]bool{}
	table := ""
	sc := bufio.NewScanner(strings.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(sc.Text()), "#"))
		if m := headerRE.FindStringSubmatch(line); m != nil {
			table = mapNames.ReplaceAllString(m[1], "$1.*")
			continue
		}
		prefix := ""
		if table != "" {
			prefix = table + "."
		}
		if m := keyRE.FindStringSubmatch(line); m != nil {
			shown[prefix+m[1]] = true
			if m[1] == "nodes" || m[1] == "endpoints" {
				table2 := prefix + m[1]
				for _, im := range inlineRE.FindAllStringSubmatch(line, -1) {
					shown[table2+"."+im[1]] = true
				}
			}
			continue
		}
		// Continuation lines of a multi-line array of inline tables.
		parent := map[string]string{"cluster": "cluster.nodes", "sites.*": "sites.*.endpoints"}[table]
		if parent != "" && strings.HasPrefix(line, "{") {
			for _, im := range inlineRE.FindAllStringSubmatch(line, -1) {
				shown[parent+"."+im[1]] = true
			}
		}
	}
	return shown
}
