// Package nodeloss holds the timing rules of a lost cluster member, as pure
// state machines with an injectable clock: Fence runs on every member and
// decides when it must stop its fail-over boxes because it may have lost
// its etcd lease; Failover runs on the others and decides when such a box
// may be re-placed. docs/CLUSTER.md gives the argument that, with
// Timing.Validate satisfied, the old member has stopped a box before
// another starts it.
//
// Only durations measured on one host's monotonic clock are compared; no
// two hosts' wall clocks are ever compared.
package nodeloss

import "time"

// Clock gives the current time. Its readings must carry Go's monotonic
// clock (time.Now does), so that wall-clock steps do not move deadlines.
type Clock interface{ Now() time.Time }

// SystemClock is time.Now.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
