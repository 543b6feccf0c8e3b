package deploy_test

import (
	"io/fs"
	"testing"

	"github.com/geodnsd/geodnsd/deploy"
)

// The embedded tree holds the demo. Every example is parsed, loaded and
// served by cmd/geodnsd's TestExamplesServe, with the options geodnsd
// derives from it.
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
