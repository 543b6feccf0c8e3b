package node

// The third translation: the replicated view → the nameserver. Services
// (names, TTL, geo routers, the locator) come from the configuration; the
// routing (each route's active site and answer) from every applied state
// whose answers changed, swapped into the zone store in one atomic step.

import (
	"context"
	"fmt"
	"time"

	"github.com/geodnsd/geodnsd/cluster"
	"github.com/geodnsd/geodnsd/config"
	"github.com/geodnsd/geodnsd/failover"
	"github.com/geodnsd/geodnsd/geo"
	"github.com/geodnsd/geodnsd/zones"
)

// services builds the nameserver's services from cfg. A geo database that
// does not open is an error naming the key.
func services(cfg *config.Config) (*zones.Services, error) {
	var loc *geo.Locator
	if cfg.Geo.Database != "" {
		var err error
		loc, err = geo.Open(cfg.Geo.Database, cfg.Geo.ASNDatabase)
		if err != nil {
			return nil, fmt.Errorf("%s: geo: %w", cfg.File, err)
		}
	}
	rts, err := routers(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	var list []zones.Service
	for _, name := range sortedKeys(cfg.Services) {
		svc := cfg.Services[name]
		zs := zones.Service{Name: name, TTL: uint32(svc.TTL.Duration / time.Second), Router: rts[name]}
		for _, n := range svc.Names {
			zs.Names = append(zs.Names, string(n))
		}
		list = append(list, zs)
	}
	svcs, err := zones.NewServices(loc, list)
	if err != nil {
		return nil, fmt.Errorf("%s: services: %w", cfg.File, err)
	}
	return svcs, nil
}

// publishRouting swaps the routing of every view whose answers changed into
// the store, until ctx ends. The first view is published at once, so that
// service names answer before the cluster has elected a leader (from the
// state on disk, or the initial state of the spec).
func publishRouting(ctx context.Context, cl *cluster.Cluster, store *zones.Store, published chan<- struct{}) {
	var (
		last        uint64
		placeholder *failover.State // the view's state before the log's first spec entry
		onIt        bool            // the last publish was of that state
	)
	for {
		ch := cl.Changed()
		v := cl.View()
		if st := v.State; st != nil {
			// Until the first spec entry is applied, the view holds one
			// placeholder state (the configured spec's initial state); the
			// log's first spec entry may be another spec (a reload that won
			// the race) at the same answers version, so leaving the
			// placeholder always publishes.
			first := placeholder == nil
			if first {
				placeholder = st
			}
			if ver := st.AnswersVersion(); first || ver != last || (onIt && st != placeholder) {
				store.SetRouting(&zones.Routing{Version: ver, Answers: st.Answers()})
				last, onIt = ver, st == placeholder
				if first {
					close(published)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}
