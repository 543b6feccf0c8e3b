package config

// The config digest: one value that is equal on every node of a cluster
// exactly when they are configured to take the same decisions and give the
// same answers.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// digestVersion names the canonical encoding; it changes whenever the
// encoding does, so that nodes of different versions see a mismatch rather
// than a false match.
const digestVersion = "geodnsd-config-digest/1"

// Digest returns "sha256:<64 hex digits>" over a canonical encoding of every
// part of the configuration that must be identical on all nodes of a
// cluster, and of the zone data the node serves (each element one zone
// file's bytes; their order does not matter).
//
// Included: [checks] as resolved into every check; [sites] (endpoint names and
// addresses, checks, sync check, coordinates); [services] with their routes,
// defaults filled in and names canonical; [geo] as the metadata of each
// database (type, build time: the same data, wherever the file lies);
// [cluster] nodes (sorted by id) and every timing and policy knob
// (vote_ttl, beat_interval, raft timeouts, max_clock_skew, write_timeout,
// snapshots, min_quorum, trust_health_without_sync, history_limit); and
// [[http.tokens]] — names, hashes and roles — because any node accepts a
// command and checks its token itself: a node that still knows a revoked
// token, or not yet a new one, must show up as a mismatch.
//
// Excluded, because they legitimately differ per node: node.id,
// node.state_dir, [dns] (listen addresses, sockets, NSID, version.bind, TCP
// limits), zones.dir (the zone data itself is included), [http] listen,
// pprof and rate limits, [log], cluster listen/ca/cert/key, and the where of
// probing: each endpoint's probe address (a node may reach an endpoint
// through its own management path) and the file paths of checks' TLS client
// credentials and CA files.
//
// Two configurations that differ only in the excluded parts, in the order of
// TOML tables or keys, in how names or codes are capitalised, or in writing
// a default explicitly, have the same digest.
func (c *Config) Digest(zoneData ...[]byte) string {
	type endpoint struct {
		Name    string `json:"name"`
		Address string `json:"address"`
	}
	type site struct {
		Endpoints   []endpoint   `json:"endpoints"`
		Checks      []Check      `json:"checks"`
		Sync        *Check       `json:"sync,omitempty"`
		Coordinates *Coordinates `json:"coordinates,omitempty"`
	}
	type node struct {
		ID    string `json:"id"`
		Raft  string `json:"raft"`
		HTTP  string `json:"http"`
		Voter bool   `json:"voter"`
	}
	type token struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
		Role   Role   `json:"role"`
	}
	doc := struct {
		Version  string              `json:"version"`
		Sites    map[string]site     `json:"sites"`
		Services map[string]*Service `json:"services"`
		Geo      [2]string           `json:"geo"`
		Nodes    []node              `json:"nodes"`
		Timing   Cluster             `json:"timing"`
		Tokens   []token             `json:"tokens"`
		Zones    []string            `json:"zones"`
	}{
		Version:  digestVersion,
		Sites:    map[string]site{},
		Services: c.Services,
		Geo:      [2]string{mmdbMetaDigest(c.Geo.Database), mmdbMetaDigest(c.Geo.ASNDatabase)},
	}
	for name, s := range c.Sites {
		if s == nil {
			continue
		}
		var d site
		for _, e := range s.Endpoints {
			d.Endpoints = append(d.Endpoints, endpoint{e.Name, e.Address})
		}
		for _, ch := range s.Checks {
			if ch != nil {
				d.Checks = append(d.Checks, checkForDigest(ch))
			}
		}
		if s.Sync != nil {
			sy := checkForDigest(s.Sync)
			d.Sync = &sy
		}
		d.Coordinates = s.Coordinates
		doc.Sites[name] = d
	}
	for _, n := range c.Cluster.Nodes {
		doc.Nodes = append(doc.Nodes, node{n.ID, n.Raft.String(), string(n.HTTP), n.Voter})
	}
	sort.Slice(doc.Nodes, func(i, j int) bool { return doc.Nodes[i].ID < doc.Nodes[j].ID })
	doc.Timing = c.Cluster
	doc.Timing.Listen, doc.Timing.CA, doc.Timing.Cert, doc.Timing.Key, doc.Timing.Nodes = AddrPort{}, "", "", "", nil
	doc.Timing.Join = false // per node: how this node came in
	for _, t := range c.HTTP.Tokens {
		doc.Tokens = append(doc.Tokens, token{t.Name, t.SHA256.String(), t.Role})
	}
	sort.Slice(doc.Tokens, func(i, j int) bool { return doc.Tokens[i].Name < doc.Tokens[j].Name })
	for _, z := range zoneData {
		sum := sha256.Sum256(z)
		doc.Zones = append(doc.Zones, hex.EncodeToString(sum[:]))
	}
	slices.Sort(doc.Zones)

	// encoding/json writes struct fields in declaration order and map keys
	// sorted: a canonical encoding for this document.
	b, err := json.Marshal(doc)
	if err != nil {
		// Only a value JSON cannot encode gets here (a NaN coordinate is
		// refused by validation); make the failure visible as a mismatch.
		b = []byte("unencodable: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkForDigest is a copy of ch without its file paths.
func checkForDigest(ch *Check) Check {
	d := *ch
	d.CAFile, d.CertFile, d.KeyFile = "", "", ""
	return d
}

// mmdbMetaDigest is the sha256 of a MaxMind DB file's metadata section
// (database type, build epoch, description, sizes), "" for no file, or a
// note that the file could not be read.
func mmdbMetaDigest(file string) string {
	if file == "" {
		return ""
	}
	meta, err := mmdbMeta(file)
	if err != nil {
		return "unreadable: " + strings.ReplaceAll(err.Error(), file, "")
	}
	sum := sha256.Sum256(meta)
	return hex.EncodeToString(sum[:])
}

// mmdbMeta returns the metadata section of a MaxMind DB file: the bytes
// after the last metadata marker, which lies in the last 128 KiB.
func mmdbMeta(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", file)
	}
	const tail = 128 << 10
	off := max(st.Size()-tail, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, err
	}
	i := bytes.LastIndex(buf, mmdbMarker)
	if i < 0 {
		return nil, errNotMMDB
	}
	return buf[i+len(mmdbMarker):], nil
}
