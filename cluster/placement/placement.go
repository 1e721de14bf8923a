// Package placement decides which cluster member runs a new box: a named
// node, the least loaded member (spread), or a rendezvous hash of the box ID
// over the live members (hash). It is pure: the caller supplies the members
// and their load.
package placement

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Kind is a placement strategy.
type Kind string

// The strategies.
const (
	// Node pins a box to one named member. A pinned box never fails over.
	Node Kind = "node"
	// Spread picks the member with the fewest boxes, then the most free
	// memory, then the smallest name (so equal members are chosen in a
	// stable order).
	Spread Kind = "spread"
	// Hash picks the member with the highest rendezvous score of the box ID:
	// every client computes the same answer from the same member list, and
	// a member's loss moves only the boxes it had.
	Hash Kind = "hash"
)

// ErrNoMember: no live member can take the box (the named node is not live,
// or none is left after exclusions).
var ErrNoMember = errors.New("placement: no live member can take the box")

// Placement is a strategy, and for Node the member's name.
type Placement struct {
	Kind Kind
	Node string
}

// Parse checks a placement from the command line: kind "node" needs a name,
// the others must not have one.
func Parse(kind, node string) (Placement, error) {
	switch Kind(kind) {
	case Node:
		if node == "" {
			return Placement{}, fmt.Errorf("placement node needs a member name")
		}
	case Spread, Hash:
		if node != "" {
			return Placement{}, fmt.Errorf("placement %s does not take a member name (got %q)", kind, node)
		}
	case "":
		if node == "" {
			return Placement{}, fmt.Errorf("give a placement: a member name, spread or hash")
		}
		kind = string(Node)
	default:
		return Placement{}, fmt.Errorf("placement %q is not node, spread or hash", kind)
	}
	return Placement{Kind: Kind(kind), Node: node}, nil
}

// Member is one live member as placement sees it.
type Member struct {
	Node string
	// Boxes is the number of boxes the member owns (running or not).
	Boxes int
	// FreeMemory is the member's available memory in bytes, from its last
	// metrics sample.
	FreeMemory uint64
}

// Choose returns the member that should run boxID. exclude names members
// that must not be chosen (a fail-over never goes back to the lost node).
func Choose(p Placement, boxID string, members []Member, exclude ...string) (string, error) {
	skip := map[string]bool{}
	for _, n := range exclude {
		skip[n] = true
	}
	var live []Member
	for _, m := range members {
		if !skip[m.Node] {
			live = append(live, m)
		}
	}
	switch p.Kind {
	case Node:
		for _, m := range live {
			if m.Node == p.Node {
				return m.Node, nil
			}
		}
		return "", fmt.Errorf("%w: member %q is not live", ErrNoMember, p.Node)
	case Spread:
		if len(live) == 0 {
			return "", ErrNoMember
		}
		sort.Slice(live, func(i, j int) bool {
			a, b := live[i], live[j]
			if a.Boxes != b.Boxes {
				return a.Boxes < b.Boxes
			}
			if a.FreeMemory != b.FreeMemory {
				return a.FreeMemory > b.FreeMemory
			}
			return a.Node < b.Node
		})
		return live[0].Node, nil
	case Hash:
		if len(live) == 0 {
			return "", ErrNoMember
		}
		best, bestScore := "", uint64(0)
		for _, m := range live {
			s := score(m.Node, boxID)
			if best == "" || s > bestScore || (s == bestScore && m.Node < best) {
				best, bestScore = m.Node, s
			}
		}
		return best, nil
	}
	return "", fmt.Errorf("placement %q is not node, spread or hash", p.Kind)
}

// score is the rendezvous (highest random weight) score of a member for a
// box: the first 8 bytes of SHA-256 over both names, separated by a byte no
// name contains so that ("ab","c") and ("a","bc") differ.
func score(node, boxID string) uint64 {
	h := sha256.New()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(boxID))
	var sum [sha256.Size]byte
	return binary.BigEndian.Uint64(h.Sum(sum[:0]))
}
