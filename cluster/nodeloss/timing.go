package nodeloss

import (
	"fmt"
	"time"

	"github.com/boxsup/boxsup/cluster/placement"
)

// The defaults: a member fences 10 s after its lease may have expired; the
// others re-place 30 s after they saw it expire. With the 10 s TTL that
// leaves 10 s for the fence's stops to land.
const (
	DefaultLeaseTTL      = 10 * time.Second
	DefaultFenceAfter    = 10 * time.Second
	DefaultFailoverAfter = 30 * time.Second
)

// Timing is a cluster's node-loss timing. Every member must use the same
// values (they are cluster configuration, not per host).
type Timing struct {
	// LeaseTTL is the TTL etcd granted the member's lease.
	LeaseTTL time.Duration
	// FenceAfter is how long after its lease may have expired a member
	// stops its fail-over boxes.
	FenceAfter time.Duration
	// FailoverAfter is how long after another member saw the lease expire
	// it may re-place those boxes.
	FailoverAfter time.Duration
}

// WithDefaults fills zero fields.
func (t Timing) WithDefaults() Timing {
	if t.LeaseTTL == 0 {
		t.LeaseTTL = DefaultLeaseTTL
	}
	if t.FenceAfter == 0 {
		t.FenceAfter = DefaultFenceAfter
	}
	if t.FailoverAfter == 0 {
		t.FailoverAfter = DefaultFailoverAfter
	}
	return t
}

// Validate refuses a timing under which a box could run twice: every value
// positive, and FailoverAfter > FenceAfter + LeaseTTL. The LeaseTTL in that
// margin is the fence's budget for stopping boxes (FenceGrace gives each
// stop at most half of it) plus slack for scheduling and clock-rate error.
// Check it again with the TTL etcd actually granted, which may be larger
// than the one asked for.
func (t Timing) Validate() error {
	if t.LeaseTTL <= 0 || t.FenceAfter <= 0 || t.FailoverAfter <= 0 {
		return fmt.Errorf("nodeloss: lease TTL (%v), fence-after (%v) and failover-after (%v) must all be positive",
			t.LeaseTTL, t.FenceAfter, t.FailoverAfter)
	}
	if t.FailoverAfter <= t.FenceAfter+t.LeaseTTL {
		return fmt.Errorf("nodeloss: failover-after (%v) must be more than fence-after (%v) plus the lease TTL (%v): "+
			"otherwise a box could be started elsewhere before its old host has stopped it",
			t.FailoverAfter, t.FenceAfter, t.LeaseTTL)
	}
	return nil
}

// FenceGrace is the stop timeout a fence gives a box: the box's own, but no
// more than half the lease TTL, so that the SIGKILL after it lands inside
// the margin Validate reserves.
func (t Timing) FenceGrace(stopTimeout time.Duration) time.Duration {
	if limit := t.LeaseTTL / 2; stopTimeout <= 0 || stopTimeout > limit {
		return limit
	}
	return stopTimeout
}

// Eligible reports whether a box takes part in fencing and fail-over: it
// opted in (failover: true) and is not pinned to its node. Every other box
// is left alone on a lost member and stays "unknown" elsewhere until its
// member comes back.
func Eligible(failover bool, kind placement.Kind) bool {
	return failover && kind != placement.Node
}
