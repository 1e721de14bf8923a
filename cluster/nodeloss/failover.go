package nodeloss

import "time"

// Verdict is what Failover says about one box of a lost owner.
type Verdict string

// The verdicts.
const (
	// Unknown: the owner is not known to be alive; show the box as
	// "unknown" with the time since it was last seen, and leave it.
	Unknown Verdict = "unknown"
	// Wait: an eligible box whose fail-over delay has not passed yet.
	Wait Verdict = "wait"
	// Replace: re-place the box now, through ownership's TakeOver (which
	// checks in etcd that the old lease is gone).
	Replace Verdict = "replace"
	// Alive: the owner's lease exists; nothing to do.
	Alive Verdict = "alive"
)

// Failover remembers, per lease, when this member first saw it gone, and
// decides when a box of that lease may be re-placed. It is not safe for
// concurrent use.
type Failover struct {
	timing  Timing
	goneAt  map[int64]time.Time
	aliveAt map[int64]bool
}

// NewFailover returns an empty tracker.
func NewFailover(t Timing) *Failover {
	return &Failover{timing: t, goneAt: map[int64]time.Time{}, aliveAt: map[int64]bool{}}
}

// Observe records one reading of a lease: alive or not, at now. Only the
// first reading that shows it gone counts: the delay runs from there. A
// member that joins late, or restarts, starts counting afresh, which only
// delays a fail-over.
func (f *Failover) Observe(lease int64, alive bool, now time.Time) {
	if alive {
		f.aliveAt[lease] = true
		return
	}
	delete(f.aliveAt, lease)
	if _, seen := f.goneAt[lease]; !seen {
		f.goneAt[lease] = now
	}
}

// Forget drops what is known of a lease (none of its boxes is left).
func (f *Failover) Forget(lease int64) {
	delete(f.goneAt, lease)
	delete(f.aliveAt, lease)
}

// Decide returns the verdict for a box owned under lease, and for Unknown
// and Wait how long its owner has been seen gone. A lease never observed is
// Unknown with zero: nothing is decided before a reading.
func (f *Failover) Decide(lease int64, eligible bool, now time.Time) (Verdict, time.Duration) {
	if f.aliveAt[lease] {
		return Alive, 0
	}
	at, seen := f.goneAt[lease]
	if !seen {
		return Unknown, 0
	}
	gone := now.Sub(at)
	switch {
	case !eligible:
		return Unknown, gone
	case gone > f.timing.FailoverAfter:
		return Replace, gone
	}
	return Wait, gone
}
