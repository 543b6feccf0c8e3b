package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// identityFile is written into the state directory at bootstrap: which
// node and which cluster the raft data there belongs to.
const identityFile = "identity.json"

type identity struct {
	Node    string   `json:"node"`
	Cluster string   `json:"cluster"`
	Members []string `json:"members"` // member ids when last started, sorted
}

// derivedClusterID is the cluster id when none is configured: a hash of
// the sorted member ids.
func derivedClusterID(ms []Member) string {
	sum := sha256.Sum256([]byte(strings.Join(memberIDs(ms), "\n")))
	return "members:" + hex.EncodeToString(sum[:8])
}

// checkIdentity reads dir's identity and refuses a state directory made for
// another node or cluster. fresh is true when the directory holds no
// identity yet (the caller bootstraps and writes one).
//
// With a configured cluster id, the ids must match. Without one, the
// cluster is recognised by its members: a strict majority of the members
// recorded at the last start must still be configured (membership changes
// one member at a time, so a cluster keeps its identity across changes,
// while another cluster's state directory has other members). Two clusters
// with the same member ids are told apart only by a configured id.
func checkIdentity(dir, node, clusterID string, ms []Member, hasState bool) (fresh bool, err error) {
	path := filepath.Join(dir, identityFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if hasState {
			return false, fmt.Errorf("state dir %s holds raft data but no %s: refusing to guess which node and cluster it belongs to", dir, identityFile)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("state dir %s: %w", dir, err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if id.Node != node {
		return false, fmt.Errorf("state dir %s was made for node %q, not %q: point state_dir at this node's own directory", dir, id.Node, node)
	}
	if clusterID != "" {
		if id.Cluster != clusterID {
			return false, fmt.Errorf("state dir %s was made for cluster %q, not %q", dir, id.Cluster, clusterID)
		}
		return false, nil
	}
	now := memberIDs(ms)
	kept := 0
	for _, m := range id.Members {
		if slices.Contains(now, m) {
			kept++
		}
	}
	if kept*2 <= len(id.Members) {
		return false, fmt.Errorf("state dir %s was made for cluster %q with members %v; only %d of them are configured now (%v): another cluster's state dir?", dir, id.Cluster, id.Members, kept, now)
	}
	return false, nil
}

// writeIdentity records node, cluster and members in dir.
func writeIdentity(dir, node, clusterID string, ms []Member) error {
	b, err := json.MarshalIndent(identity{Node: node, Cluster: clusterID, Members: memberIDs(ms)}, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, identityFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, identityFile))
}

// readIdentity returns dir's identity (for keeping its cluster id).
func readIdentity(dir string) (identity, error) {
	var id identity
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if err != nil {
		return id, err
	}
	return id, json.Unmarshal(b, &id)
}
