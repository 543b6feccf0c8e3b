package node

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/deploy"
)

// Source says where a configuration comes from: a file, or the embedded
// demo (Demo true, File ignored).
type Source struct {
	File string
	Demo bool
}

// loaded is a configuration with the file system its zones are read from.
type loaded struct {
	cfg *config.Config
	zfs zoneFS
}

// zoneFS says where zone files are read from.
type zoneFS struct {
	fsys fs.FS
	dir  string
	root string // OS path of fsys's root, for file names in errors
}

// load reads the configuration file, or the embedded demo.
func load(src Source) (*loaded, error) {
	if src.Demo {
		ex := deploy.Examples()
		b, err := fs.ReadFile(ex, deploy.DemoConfig)
		if err != nil {
			return nil, err
		}
		cfg, err := config.Parse(b, deploy.DemoConfig)
		if err != nil {
			return nil, err
		}
		return &loaded{cfg: cfg, zfs: zoneFS{fsys: ex, dir: path.Clean(cfg.Zones.Dir)}}, nil
	}
	cfg, err := config.Load(src.File)
	if err != nil {
		return nil, err
	}
	return fileLoaded(cfg)
}

// fileLoaded pairs a configuration read from the operating system's files
// with the file system its zones come from.
func fileLoaded(cfg *config.Config) (*loaded, error) {
	dir, err := filepath.Abs(cfg.Zones.Dir)
	if err != nil {
		return nil, fmt.Errorf("zones.dir: %w", err)
	}
	return &loaded{cfg: cfg, zfs: zoneFS{fsys: os.DirFS("/"), dir: strings.TrimPrefix(dir, "/"), root: "/"}}, nil
}
