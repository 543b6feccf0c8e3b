// Command failoverctl is the operator's command line for geodnsd: it reads
// the cluster's status and history and runs the failover commands (promote,
// failover, drain, undrain, mode, mark-synced, freeze, thaw) over the HTTP
// admin API of any node (web/api), and validates a configuration offline.
//
//	failoverctl [--server URL[,URL...]] [--token T] [--json] [--timeout D] COMMAND [ARGS] [FLAGS]
//
// Exit codes: 0 done, 1 refused by a guard, 2 usage or invalid, 3
// unavailable (no node reachable, no quorum, timeout), 4 not authorised.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/geodnsd/geodnsd/node"
	"github.com/geodnsd/geodnsd/web/api"
)

// Exit codes: the contract scripts rely on.
const (
	exitOK          = 0
	exitRefused     = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitAuth        = 4
)

// DefaultServer is the server asked when neither --server nor
// GEODNSD_SERVER names one.
const DefaultServer = "http://127.0.0.1:8053"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// validate is `failoverctl validate CONFIG`: the offline check, the very
// one `geodnsd -check-config` runs (node.Validate: the configuration, every
// zone and every check, and how they fit together), printing its report on
// stdout.
func validate(path string, stdout io.Writer) error {
	rep, err := node.Validate(node.Source{File: path})
	if err != nil {
		return err
	}
	rep.Write(stdout)
	return nil
}

const usage = `usage: failoverctl [--server URL[,URL...]] [--token T] [--json] [--timeout D] COMMAND [ARGS]

commands:
  status                                        services, sites and nodes (public, no token)
  promote SITE [--force --reason R] [--wait]    make SITE active where it is preferred
  failover SERVICE --to SITE [--route R] [--force --reason R] [--wait]
  drain SITE [--force --reason R] [--wait]      move every service away from SITE, keep it away
  undrain SITE [--wait]                         let SITE serve again
  mode SERVICE auto|manual [--failback auto|manual] [--wait]
  mark-synced SITE [--force --reason R] [--wait] attest that SITE's data is in sync
  freeze [--wait] / thaw [--wait]               stop / resume automatic decisions
  history [-n N]                                the last N audited decisions and commands (default 20)
  nodes                                         cluster members, freshness, config digests
  validate CONFIG                               check a configuration offline (as geodnsd -check-config)
  token [--name NAME] [--role read|operator]    make a token and the sha256 for [[http.tokens]]

--reason R is recorded with any command. The token comes from --token or
GEODNSD_TOKEN, the servers from --server or GEODNSD_SERVER (default ` + DefaultServer + `),
tried in turn. Exit: 0 done, 1 refused, 2 usage or invalid, 3 unavailable, 4 not authorised.
`

// cmdFlags lists the flags each command takes beyond the global ones.
var cmdFlags = map[string][]string{
	"status":      {},
	"promote":     {"force", "reason", "wait"},
	"failover":    {"to", "route", "force", "reason", "wait"},
	"drain":       {"force", "reason", "wait"},
	"undrain":     {"reason", "wait"},
	"mode":        {"failback", "reason", "wait"},
	"mark-synced": {"force", "reason", "wait"},
	"freeze":      {"reason", "wait"},
	"thaw":        {"reason", "wait"},
	"history":     {"n"},
	"nodes":       {},
	"validate":    {},
	"token":       {"name", "role"},
}

var globalFlags = []string{"server", "token", "json", "timeout"}

// cmdArgs is how many positional arguments each command takes.
var cmdArgs = map[string]int{
	"status": 0, "promote": 1, "failover": 1, "drain": 1, "undrain": 1, "mode": 2, "mark-synced": 1,
	"freeze": 0, "thaw": 0, "history": 0, "nodes": 0, "validate": 1, "token": 0,
}

type options struct {
	servers  string
	token    string
	json     bool
	timeout  time.Duration
	force    bool
	reason   string
	wait     bool
	to       string
	route    string
	failback string
	n        int
	name     string
	role     string
}

type cli struct {
	o      options
	stdout io.Writer
	stderr io.Writer
	client *api.Client
}

// run is the whole program: args without the program name; it returns the
// exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("failoverctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &c.o
	fs.StringVar(&o.servers, "server", "", "comma-separated base URLs of nodes, tried in turn")
	fs.StringVar(&o.token, "token", "", "bearer token (default $GEODNSD_TOKEN)")
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "bound on the whole call")
	fs.BoolVar(&o.force, "force", false, "override the guards (needs --reason)")
	fs.StringVar(&o.reason, "reason", "", "why: recorded in the audit history")
	fs.BoolVar(&o.wait, "wait", false, "return once every reachable node has applied the command")
	fs.StringVar(&o.to, "to", "", "failover: the target site")
	fs.StringVar(&o.route, "route", "", "failover: only this route")
	fs.StringVar(&o.failback, "failback", "", "mode: the fail-back mode, auto or manual")
	fs.IntVar(&o.n, "n", 20, "history: how many entries")
	fs.StringVar(&o.name, "name", "", "token: the actor name for the config snippet")
	fs.StringVar(&o.role, "role", "operator", "token: read or operator")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if err != nil {
		return c.usageErr("%v", err)
	}
	if len(pos) == 0 {
		return c.usageErr("no command")
	}
	cmd, pos := pos[0], pos[1:]
	if cmd == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	allowed, ok := cmdFlags[cmd]
	if !ok {
		return c.usageErr("unknown command %q", cmd)
	}
	var bad []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(allowed, f.Name) && !slices.Contains(globalFlags, f.Name) {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return c.usageErr("%s does not take %s", cmd, strings.Join(bad, ", "))
	}
	if len(pos) != cmdArgs[cmd] {
		return c.usageErr("%s takes %d argument(s), got %d: %q", cmd, cmdArgs[cmd], len(pos), pos)
	}
	if o.force && strings.TrimSpace(o.reason) == "" {
		return c.usageErr("--force needs --reason \"...\" (it is audited)")
	}

	switch cmd {
	case "token":
		return c.makeToken()
	case "validate":
		return c.validate(pos[0])
	}

	servers := o.servers
	if servers == "" {
		servers = os.Getenv("GEODNSD_SERVER")
	}
	if servers == "" {
		servers = DefaultServer
	}
	var list []string
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "://") {
			s = "http://" + s
		}
		list = append(list, s)
	}
	if len(list) == 0 {
		return c.usageErr("--server: no URL given")
	}
	tok := o.token
	if tok == "" {
		tok = os.Getenv("GEODNSD_TOKEN")
	}
	c.client = &api.Client{Servers: list, Token: tok, HTTP: &http.Client{Timeout: o.timeout}}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	switch cmd {
	case "status":
		return c.status(ctx)
	case "history":
		return c.history(ctx)
	case "nodes":
		return c.nodes(ctx)
	}
	req := api.CommandRequest{Force: o.force, Reason: o.reason}
	switch cmd {
	case "promote", "drain", "undrain", "mark-synced":
		req.Site = pos[0]
	case "failover":
		if o.to == "" {
			return c.usageErr("failover %s needs --to SITE", pos[0])
		}
		req.Service, req.Site, req.Route = pos[0], o.to, o.route
	case "mode":
		if pos[1] != "auto" && pos[1] != "manual" {
			return c.usageErr("mode %s: %q is not auto or manual", pos[0], pos[1])
		}
		if o.failback != "" && o.failback != "auto" && o.failback != "manual" {
			return c.usageErr("--failback %q is not auto or manual", o.failback)
		}
		req.Service, req.Mode, req.Failback = pos[0], pos[1], o.failback
	}
	return c.command(ctx, cmd, req)
}

// parseInterleaved parses flags anywhere among the positional arguments
// (failoverctl promote dallas --force --reason x); "--" ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// flag stops at "--" (consumed) or at the first non-flag.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func (c *cli) usageErr(format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	if c.o.json {
		c.printJSON(api.ErrorBody{Error: "usage", Message: msg})
	}
	fmt.Fprintf(c.stderr, "failoverctl: %s\n(failoverctl help for usage)\n", msg)
	return exitUsage
}

func (c *cli) printJSON(v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	c.stdout.Write(append(b, '\n'))
}

// fail reports err and returns its exit code.
func (c *cli) fail(err error) int {
	code := exitUnavailable
	body := api.ErrorBody{Error: api.ReasonUnavailable, Message: err.Error()}
	var ae *api.Error
	if errors.As(err, &ae) {
		body = ae.Body
		switch s := ae.Status; {
		case s == http.StatusUnauthorized || s == http.StatusForbidden:
			code = exitAuth
		case s == http.StatusConflict:
			code = exitRefused
		case s >= 400 && s < 500 && s != http.StatusTooManyRequests:
			code = exitUsage
		}
	}
	if c.o.json {
		c.printJSON(body)
	}
	var line string
	switch {
	case code == exitRefused:
		line = "refused: " + body.Message
		if body.Check != "" {
			line += fmt.Sprintf(" [%s: %s]", body.Check, body.Observed)
		}
	case ae != nil:
		line = fmt.Sprintf("%s (%s, HTTP %d from %s)", body.Message, body.Error, ae.Status, ae.Server)
	default:
		line = err.Error()
	}
	fmt.Fprintf(c.stderr, "failoverctl: %s\n", line)
	return code
}

func (c *cli) command(ctx context.Context, op string, req api.CommandRequest) int {
	r, err := c.client.Command(ctx, op, req, c.o.wait)
	if err != nil {
		return c.fail(err)
	}
	if c.o.json {
		c.printJSON(r)
		return exitOK
	}
	where := "applied by the leader"
	if r.Applied == "all" {
		where = "applied by every reachable node"
	}
	fmt.Fprintf(c.stdout, "%s: done by %s at index %d, %s\n", r.Command, r.Actor, r.Index, where)
	for _, e := range r.Entries {
		fmt.Fprintf(c.stdout, "  %s\n", entryLine(e))
	}
	return exitOK
}

// entryLine is a command's effect in one line.
func entryLine(e api.HistoryEntry) string {
	var b strings.Builder
	switch {
	case e.Service != "" && e.Route != "":
		b.WriteString(e.Service + "/" + e.Route)
	case e.Service != "":
		b.WriteString(e.Service)
	case e.Site != "":
		b.WriteString(e.Site)
	default:
		b.WriteString(e.What)
	}
	if e.From != "" && e.To != "" {
		fmt.Fprintf(&b, ": %s → %s", e.From, e.To)
	}
	if e.Epoch != 0 {
		fmt.Fprintf(&b, " (epoch %d)", e.Epoch)
	}
	if e.Forced {
		b.WriteString(" FORCED")
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	if e.Note != "" {
		fmt.Fprintf(&b, " (%s)", e.Note)
	}
	return b.String()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func ts(t api.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *cli) status(ctx context.Context) int {
	s, err := c.client.Status(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.o.json {
		c.printJSON(s)
		return exitOK
	}
	w := c.stdout
	leader := s.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "node %s  leader %s  quorum %s  frozen %s  index %d  at %s\n", s.Node, leader, yes(s.Quorum),
		yes(s.Frozen), s.AppliedIndex, ts(s.GeneratedAt))
	if !s.Quorum {
		fmt.Fprintln(w, "NO QUORUM: this node serves the last agreed state and refuses commands")
	}
	if s.ConfigMismatch {
		fmt.Fprintln(w, "CONFIG MISMATCH: nodes report different config digests (see failoverctl nodes)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tROUTE\tACTIVE\tCONDITION\tEPOCH\tSINCE\tANSWER\tREASON")
	var blocked []string
	for _, svc := range s.Services {
		for _, r := range svc.Routes {
			ans := strings.Join(r.Answer, " ")
			if r.FailOpen {
				ans += " (fail open)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", svc.Name, r.Name, r.Active, r.Condition, r.Epoch, ts(r.Since), ans, r.Reason)
			for _, b := range r.Blocked {
				blocked = append(blocked, fmt.Sprintf("%s/%s: fail-back to %s blocked by %s: %s", svc.Name, r.Name, b.Site, b.Check, b.Observed))
			}
		}
	}
	tw.Flush()
	for _, b := range blocked {
		fmt.Fprintln(w, b)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tHEALTH\tSYNC\tADMIN\tENDPOINTS (votes up/down)")
	for _, site := range s.Sites {
		var eps []string
		for _, e := range site.Endpoints {
			eps = append(eps, fmt.Sprintf("%s %s %d/%d", e.Name, e.Health, e.Votes.Up, e.Votes.Down))
		}
		sync := site.Sync
		if site.SyncAttested {
			sync += " (attested)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", site.Name, site.Health, sync, site.Admin, strings.Join(eps, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	c.nodeTable(s.Nodes)
	return exitOK
}

func (c *cli) nodeTable(nodes []api.Node) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tFRESH\tROLE\tLAST SEEN\tAPPLIED\tCONFIG DIGEST")
	for _, n := range nodes {
		role := "-"
		if n.Leader {
			role = "leader"
		}
		applied, digest := "?", n.ConfigDigest
		if n.AppliedIndex > 0 {
			applied = fmt.Sprint(n.AppliedIndex)
		}
		if digest == "" {
			digest = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, yes(n.Fresh), role, ts(n.LastSeen), applied, digest)
	}
	tw.Flush()
}

func (c *cli) nodes(ctx context.Context) int {
	n, err := c.client.Nodes(ctx)
	if err != nil {
		return c.fail(err)
	}
	if c.o.json {
		c.printJSON(n)
		return exitOK
	}
	leader := n.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(c.stdout, "leader %s  quorum %s  config mismatch %s\n", leader, yes(n.Quorum), yes(n.ConfigMismatch))
	c.nodeTable(n.Nodes)
	return exitOK
}

func (c *cli) history(ctx context.Context) int {
	if c.o.n < 1 {
		return c.usageErr("-n %d: want at least 1", c.o.n)
	}
	var entries []api.HistoryEntry
	before := uint64(0)
	for len(entries) < c.o.n {
		p, err := c.client.History(ctx, min(c.o.n-len(entries), 1000), before)
		if err != nil {
			return c.fail(err)
		}
		entries = append(entries, p.Entries...)
		if p.Next == 0 || len(p.Entries) == 0 {
			break
		}
		before = p.Next
	}
	if c.o.json {
		if entries == nil {
			entries = []api.HistoryEntry{}
		}
		c.printJSON(entries)
		return exitOK
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tWHAT\tACTOR\tCHANGE")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, ts(e.Time), e.Kind, e.What, e.Actor, entryLine(e))
	}
	tw.Flush()
	return exitOK
}

// makeToken prints a new random token (32 bytes from crypto/rand, base64url)
// and the sha256 that [[http.tokens]] stores.
func (c *cli) makeToken() int {
	if c.o.role != "read" && c.o.role != "operator" {
		return c.usageErr("--role %q: want read or operator", c.o.role)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Fprintf(c.stderr, "failoverctl: %v\n", err)
		return exitUnavailable
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(tok))
	h := hex.EncodeToString(sum[:])
	name := c.o.name
	if name == "" {
		name = "NAME"
	}
	if c.o.json {
		c.printJSON(struct {
			Token  string `json:"token"`
			SHA256 string `json:"sha256"`
			Name   string `json:"name"`
			Role   string `json:"role"`
		}{tok, h, name, c.o.role})
		return exitOK
	}
	fmt.Fprintf(c.stdout, "token:  %s\nsha256: %s\n\n# in the configuration of every node (the token itself stays with %s):\n[[http.tokens]]\nname = %q\nsha256 = %q\nrole = %q\n",
		tok, h, name, name, h, c.o.role)
	return exitOK
}

func (c *cli) validate(path string) int {
	out := c.stdout
	if c.o.json {
		out = io.Discard
	}
	if err := validate(path, out); err != nil {
		if c.o.json {
			c.printJSON(api.ErrorBody{Error: api.ReasonInvalid, Message: err.Error()})
		}
		fmt.Fprintf(c.stderr, "failoverctl: %v\n", err)
		return exitUsage
	}
	if c.o.json {
		c.printJSON(struct {
			Valid  bool   `json:"valid"`
			Config string `json:"config"`
		}{true, path})
	}
	return exitOK
}
