package failover

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
)

// VerdictsDigest is the digest of a node's verdict set: "sha256:" and 64 hex
// digits. It covers, for each observation, its site, endpoint name, check
// and up/down, and for each sync verdict its site, check and in_sync — what
// decides. It ignores Time, Node and Reason (a reason's wording may change
// at every probe without the verdict changing) and the order of the lists.
// So it changes when any verdict is added, removed or flips, and it equals
// State.NodeVerdictsDigest when the state holds exactly these verdicts for
// the node. A list that names one (site, endpoint, check) twice, or one
// site's sync twice, never equals a state's digest (Apply refuses such a
// VerdictSet).
func VerdictsDigest(obs []Observation, sync []SyncVerdict) string {
	lines := make([]string, 0, len(obs)+len(sync))
	for _, o := range obs {
		lines = append(lines, obsLine(o.Site, o.Endpoint, o.Check, o.Up))
	}
	for _, v := range sync {
		lines = append(lines, syncLine(v.Site, v.Check, v.InSync))
	}
	return digestLines(lines)
}

// NodeVerdictsDigest is VerdictsDigest of the verdicts s holds for node:
// every check vote and sync vote it has from that node (fresh or not), as
// the node would list them. A node compares it with the digest of its own
// current verdicts (KnownVerdicts of them, while its config differs from
// the cluster's) and resends a VerdictSet when they differ: a verdict that
// was lost, or forgotten when a site lost in_sync, comes back that way. It
// returns "" for a node that is not a voter.
func (s *State) NodeVerdictsDigest(node string) string {
	n, ok := s.nodeIdx[node]
	if !ok {
		return ""
	}
	return s.nodeVerdictsDigest(n)
}

func (s *State) nodeVerdictsDigest(n int) string {
	var lines []string
	for i := range s.sites {
		st, sp := &s.sites[i], &s.spec.Sites[i]
		for _, v := range st.wide.votes[n] {
			lines = append(lines, obsLine(sp.Name, "", v.check, v.up))
		}
		for j := range st.eps {
			for _, v := range st.eps[j].votes[n] {
				lines = append(lines, obsLine(sp.Name, sp.Endpoints[j].Name, v.check, v.up))
			}
		}
		if v := st.syncVotes[n]; v.set {
			lines = append(lines, syncLine(sp.Name, sp.SyncCheck, v.inSync))
		}
	}
	return digestLines(lines)
}

func obsLine(site, endpoint, check string, up bool) string {
	return "check " + strconv.Quote(site) + " " + strconv.Quote(endpoint) + " " + strconv.Quote(check) + " " + strconv.FormatBool(up)
}

func syncLine(site, check string, inSync bool) string {
	return "sync " + strconv.Quote(site) + " " + strconv.Quote(check) + " " + strconv.FormatBool(inSync)
}

func digestLines(lines []string) string {
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}
