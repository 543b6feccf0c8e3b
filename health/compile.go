package health

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// Key names one scheduled check: a check of a site, on one endpoint or
// site-wide (Endpoint "").
type Key struct {
	Site, Endpoint, Check string
}

func (k Key) String() string {
	if k.Endpoint == "" {
		return k.Site + "/" + k.Check
	}
	return k.Site + "/" + k.Endpoint + "/" + k.Check
}

// Check is one probe the scheduler runs: a configured check compiled for one
// target.
type Check struct {
	Key
	Type   string
	Sync   bool // a sync check: its verdicts are InSync / NotInSync
	Target Target

	Interval, Timeout time.Duration
	Rise, Fall        int

	Probe ProbeFunc
	// Spec identifies what Probe does; on reload a check whose Spec, Target
	// and timing are unchanged is left running as it is.
	Spec string
}

// NewProbe compiles one configured check into a ProbeFunc; sync selects the
// sync behaviour (a JSON comparison for http and https).
func NewProbe(c *config.Check, sync bool) (ProbeFunc, error) {
	switch c.Type {
	case config.CheckHTTP, config.CheckHTTPS:
		return newHTTP(c, sync)
	case config.CheckTCP:
		return newTCP(c)
	case config.CheckTLS:
		return newTLS(c)
	case config.CheckSMTP:
		return newSMTP(c)
	case config.CheckDNS:
		return newDNS(c)
	case config.CheckExec:
		return newExec(c)
	}
	return nil, fmt.Errorf("unknown check type %q", c.Type)
}

// Compile turns a validated configuration into the checks to schedule: each
// check once per endpoint of its site (probed at the endpoint's probe
// address), or once when it is site-wide; and each site's sync check once.
// The result is sorted by key.
func Compile(cfg *config.Config) ([]Check, error) {
	var out []Check
	for _, s := range cfg.Sites {
		for _, c := range s.Checks {
			p, err := NewProbe(c, false)
			if err != nil {
				return nil, fmt.Errorf("site %s: check %s: %w", s.Name, c.Name, err)
			}
			if c.SiteWide() {
				t, err := siteTarget(s.Name, c)
				if err != nil {
					return nil, fmt.Errorf("site %s: check %s: %w", s.Name, c.Name, err)
				}
				out = append(out, newCheck(s.Name, "", c, false, t, p))
				continue
			}
			for _, e := range s.Endpoints {
				t := Target{Site: s.Name, Endpoint: e.Name, Address: e.Address, Host: e.ProbeHost, Port: c.Port}
				if e.ProbePort != 0 && c.Type != config.CheckExec {
					t.Port = e.ProbePort
				}
				out = append(out, newCheck(s.Name, e.Name, c, false, t, p))
			}
		}
		if c := s.Sync; c != nil {
			p, err := NewProbe(c, true)
			if err != nil {
				return nil, fmt.Errorf("site %s: sync check: %w", s.Name, err)
			}
			t, err := siteTarget(s.Name, c)
			if err != nil {
				return nil, fmt.Errorf("site %s: sync check: %w", s.Name, err)
			}
			out = append(out, newCheck(s.Name, "", c, true, t, p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.less(out[j].Key) })
	return out, nil
}

func (k Key) less(o Key) bool {
	if k.Site != o.Site {
		return k.Site < o.Site
	}
	if k.Endpoint != o.Endpoint {
		return k.Endpoint < o.Endpoint
	}
	return k.Check < o.Check
}

// siteTarget is the target of a site-wide check: its url's host or its address.
func siteTarget(site string, c *config.Check) (Target, error) {
	t := Target{Site: site}
	var hostport string
	switch {
	case c.URL != "":
		u, err := url.Parse(c.URL)
		if err != nil {
			return t, err
		}
		hostport = canonicalAddr(u)
	case c.Address != "":
		hostport = c.Address
	default:
		return t, nil // an exec sync check: no target but the site
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		if c.Type == config.CheckExec {
			t.Host = hostport
			return t, nil
		}
		return t, err
	}
	t.Host = h
	t.Port, err = strconv.Atoi(p)
	return t, err
}

func newCheck(site, endpoint string, c *config.Check, sync bool, t Target, p ProbeFunc) Check {
	spec, err := json.Marshal(c)
	if err != nil {
		spec = []byte(fmt.Sprintf("%p", c)) // unreachable with config's types; never equal to another
	}
	return Check{
		Key:      Key{Site: site, Endpoint: endpoint, Check: c.Name},
		Type:     c.Type,
		Sync:     sync,
		Target:   t,
		Interval: c.Interval.Duration,
		Timeout:  c.Timeout.Duration,
		Rise:     c.Rise,
		Fall:     c.Fall,
		Probe:    p,
		Spec:     string(spec),
	}
}
