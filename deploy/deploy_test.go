package deploy_test

import (
	"io/fs"
	"path"
	"testing"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/deploy"
	"github.com/geodnsd/geodnsd/zones"
)

// Every example configuration parses, and every zone it names loads cleanly.
func TestExamplesLoad(t *testing.T) {
	ex := deploy.Examples()
	cfgs, err := fs.Glob(ex, "*/geodnsd.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) == 0 {
		t.Fatal("no examples found")
	}
	for _, file := range cfgs {
		t.Run(path.Dir(file), func(t *testing.T) {
			src, err := fs.ReadFile(ex, file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(src, file)
			if err != nil {
				t.Fatal(err)
			}
			st := zones.NewStore(zones.StoreOptions{FS: ex, Dir: cfg.Zones.Dir})
			if err := st.Load(); err != nil {
				t.Fatal(err)
			}
			if !st.Ready() || len(st.Snapshot().Zones()) == 0 {
				t.Errorf("%s: zones in %s not loaded", file, cfg.Zones.Dir)
			}
		})
	}
	if _, err := fs.Stat(ex, deploy.DemoConfig); err != nil {
		t.Errorf("demo config: %v", err)
	}
}
