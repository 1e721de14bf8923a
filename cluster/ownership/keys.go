package ownership

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/boxsup/boxsup/cluster/placement"
)

// namePattern bounds cluster and node names: they become etcd key segments.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$`)

// LeaseID is an etcd lease, as a member's session holds it.
type LeaseID int64

// String renders the lease in hex, as etcdctl does.
func (l LeaseID) String() string { return strconv.FormatInt(int64(l), 16) }

// Record is the ownership record of one box.
type Record struct {
	// Node is the member that owns the box (runs it, or ran it last).
	Node string `json:"node"`
	// Lease is the session of Node under which the record was written.
	// When that lease is gone, the owner is not known to be alive.
	Lease LeaseID `json:"lease"`
	// Failover says the box may be re-placed on another member after its
	// owner's loss (never when Placement is "node").
	Failover bool `json:"failover,omitempty"`
	// Placement is how the box was placed: "node", "spread" or "hash".
	Placement placement.Kind `json:"placement,omitempty"`
	// Epoch counts owners: 1 at the first claim, +1 at every take-over.
	Epoch uint64 `json:"epoch"`
	// ClaimedAt is when the current owner claimed it (the owner's clock;
	// for humans only, never for timing).
	ClaimedAt time.Time `json:"claimed_at"`
	// Address is the owner's remote address when it wrote the record: a
	// member deciding a fail-over asks there first whether the box still
	// runs (docs/CLUSTER.md).
	Address string `json:"address,omitempty"`
	// Fenced says the owner stopped the box because it gave up (or lost)
	// its lease, and will not start it again: a member deciding a
	// fail-over need not ask the old host (docs/CLUSTER.md).
	Fenced bool `json:"fenced,omitempty"`
}

// Member is one member's registration.
type Member struct {
	Node     string    `json:"node"`
	Lease    LeaseID   `json:"lease"`
	Address  string    `json:"address,omitempty"` // protoactor remote host:port
	JoinedAt time.Time `json:"joined_at"`
}

type keys struct{ prefix string }

func newKeys(cluster string) (keys, error) {
	if !namePattern.MatchString(cluster) {
		return keys{}, fmt.Errorf("ownership: cluster name %q: use letters, digits, '.', '_' and '-'", cluster)
	}
	return keys{prefix: "/boxsup/" + cluster + "/"}, nil
}

func (k keys) members() string           { return k.prefix + "members/" }
func (k keys) member(node string) string { return k.members() + node }
func (k keys) lease(l LeaseID) string    { return k.prefix + "leases/" + l.String() }
func (k keys) boxes() string             { return k.prefix + "boxes/" }
func (k keys) box(id string) string      { return k.boxes() + id }
func (k keys) spec(id string) string     { return k.prefix + "specs/" + id }
