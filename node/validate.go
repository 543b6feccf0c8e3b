package node

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/health"
	"github.com/geodnsd/geodnsd/zones"
)

// Report is what Validate found in a configuration that is good.
type Report struct {
	File     string
	Zones    []ZoneReport
	Sites    int
	Checks   int
	Services int
	// Warnings are allowed but risky settings, positioned like errors.
	Warnings []string
	// Digest is the config digest the node would report ("sha256:...").
	Digest string
}

// ZoneReport is one zone that loaded.
type ZoneReport struct {
	Origin string
	Serial uint32
	File   string
}

// Write prints the report as `geodnsd -check-config` and
// `failoverctl validate` show it.
func (r *Report) Write(w io.Writer) {
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
	for _, z := range r.Zones {
		fmt.Fprintf(w, "zone %s serial %d ok (%s)\n", z.Origin, z.Serial, z.File)
	}
	fmt.Fprintf(w, "config %s ok: %d zones, %d sites, %d checks, %d services; digest %s\n",
		r.File, len(r.Zones), r.Sites, r.Checks, r.Services, r.Digest)
}

// Validate checks a configuration exactly as start-up does, without binding
// anything or starting a probe: the configuration, every zone and every check,
// and how they fit together. Every error wraps ErrConfig and says where
// (file:line and key path, or the zone file and line).
func Validate(src Source) (*Report, error) {
	lc, err := load(src)
	if err != nil {
		return nil, cfgErr(err)
	}
	return validate(lc)
}

// compiled is a configuration compiled into what the components take.
type compiled struct {
	checks []health.Check
	spec   failover.Spec
	svcs   *zones.Services
}

// compile turns a validated configuration into the probes, the failover spec
// (checked by failover.New) and the nameserver's services (geo databases
// opened). Start-up, reload and Validate all use it, so they refuse the same
// things. Errors wrap ErrConfig and name the file.
func compile(cfg *config.Config) (*compiled, error) {
	checks, err := health.Compile(cfg)
	if err != nil {
		return nil, cfgErr(fmt.Errorf("%s: %w", cfg.File, err))
	}
	spec, err := failoverSpec(cfg)
	if err == nil {
		_, err = failover.New(spec, time.Time{})
	}
	if err != nil {
		return nil, cfgErr(fmt.Errorf("%s: failover spec: %w", cfg.File, err))
	}
	svcs, err := services(cfg)
	if err != nil {
		return nil, cfgErr(err)
	}
	return &compiled{checks: checks, spec: spec, svcs: svcs}, nil
}

func validate(lc *loaded) (*Report, error) {
	cfg := lc.cfg
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	checks, svcs := c.checks, c.svcs
	store := zones.NewStore(zones.StoreOptions{FS: lc.zfs.fsys, Dir: lc.zfs.dir, Root: lc.zfs.root})
	if err := store.Load(); err != nil {
		return nil, cfgErr(err)
	}
	if err := store.SetServices(svcs); err != nil {
		return nil, cfgErr(positioned(cfg, err))
	}
	r := &Report{File: cfg.File, Sites: len(cfg.Sites), Checks: len(checks), Services: svcs.Len(),
		Warnings: cfg.Warnings, Digest: configDigest(lc)}
	for _, z := range store.Snapshot().Zones() {
		r.Zones = append(r.Zones, ZoneReport{Origin: z.Origin(), Serial: z.SOA().Serial, File: z.File()})
	}
	return r, nil
}

// positioned turns the services' conflicts with the zone data into
// configuration errors at the key that names the service name
// ("services.www.names[1]"), with its line, as the configuration's own
// errors are; other errors are returned with the file named.
func positioned(cfg *config.Config, err error) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	var out config.Errors
	for _, e := range list {
		var se *zones.ServiceNameError
		if !errors.As(e, &se) {
			return fmt.Errorf("%s: services: %w", cfg.File, err)
		}
		key := "services." + se.Service + ".names"
		if svc := cfg.Services[se.Service]; svc != nil {
			for i, n := range svc.Names {
				if strings.EqualFold(string(n), se.Name) {
					key = fmt.Sprintf("%s[%d]", key, i)
					break
				}
			}
		}
		out = append(out, cfg.Errorf(key, "%s: %s", se.Name, se.Msg))
	}
	return out
}
