package nodeloss

import (
	"errors"
	"fmt"
	"time"
)

// FenceState is where a member stands with its own lease.
type FenceState string

// The fence states.
//
//	holding  --deadline passed-->  fencing  --FenceDone-->  fenced
//	holding  --lease gone------->  lost     --deadline---->  fencing
//	any      --Joined------------> holding  (a new session)
const (
	// Holding: the lease is renewed, or its ValidUntil has passed less than
	// FenceAfter ago (it may still be alive; etcd may be slow).
	Holding FenceState = "holding"
	// Lost: etcd said the lease is gone; the session is over and no new box
	// is accepted, but the fence deadline has not come yet.
	Lost FenceState = "lost"
	// Fencing: the deadline passed; the member is stopping its fail-over
	// boxes and accepts no new box.
	Fencing FenceState = "fencing"
	// Fenced: those boxes are stopped (and recorded so); still no new box
	// until a new session is held.
	Fenced FenceState = "fenced"
)

// Action is what the member must do after an input.
type Action int

// The actions.
const (
	// None: nothing to do.
	None Action = iota
	// StartFence: stop every eligible box now, with Timing.FenceGrace, and
	// record on each that it was fenced so nothing restarts it; then call
	// FenceDone.
	StartFence
)

// Fence is one member's view of its own lease. It is not safe for
// concurrent use: feed it from one goroutine (an actor).
type Fence struct {
	timing     Timing
	state      FenceState
	validUntil time.Time // lower bound of etcd's expiry of the current lease
}

// NewFence starts in Holding with the first renewal's ValidUntil (the join).
func NewFence(t Timing, validUntil time.Time) *Fence {
	return &Fence{timing: t, state: Holding, validUntil: validUntil}
}

// State returns the current state.
func (f *Fence) State() FenceState { return f.state }

// Deadline is when the member fences if no renewal comes: ValidUntil plus
// FenceAfter.
func (f *Fence) Deadline() time.Time { return f.validUntil.Add(f.timing.FenceAfter) }

// Renewed records an answered renewal of the current lease. It never moves
// ValidUntil backwards (answers may arrive out of order).
func (f *Fence) Renewed(validUntil time.Time) {
	if f.state != Holding {
		return // a renewal of an ended session changes nothing
	}
	if validUntil.After(f.validUntil) {
		f.validUntil = validUntil
	}
}

// Gone records that etcd said the lease does not exist. The deadline does
// not move: the others count from when they saw the expiry, which is not
// before ValidUntil.
func (f *Fence) Gone() {
	if f.state == Holding {
		f.state = Lost
	}
}

// Tick advances time. It returns StartFence exactly once per lost session,
// at the first tick at or after the deadline.
func (f *Fence) Tick(now time.Time) Action {
	switch f.state {
	case Holding, Lost:
		if !now.Before(f.Deadline()) {
			f.state = Fencing
			return StartFence
		}
	}
	return None
}

// FenceDone records that the fence's stops have finished.
func (f *Fence) FenceDone() {
	if f.state == Fencing {
		f.state = Fenced
	}
}

// Joined records a new session (a new lease, ValidUntil from its join).
// Boxes fenced before stay stopped: that was recorded on each of them.
func (f *Fence) Joined(validUntil time.Time) {
	f.state, f.validUntil = Holding, validUntil
}

// ErrNotAccepting: the member may have lost its lease, so it takes no new
// box (it could not be counted on to fence it in time).
var ErrNotAccepting = errors.New("nodeloss: this member is not accepting new boxes")

// Accepting returns nil when the member may start or take over a box that
// needs ownership, else ErrNotAccepting with the reason.
func (f *Fence) Accepting(now time.Time) error {
	switch {
	case f.state == Holding && now.Before(f.validUntil):
		return nil
	case f.state == Holding:
		return fmt.Errorf("%w: its etcd lease has not been renewed for %v", ErrNotAccepting, now.Sub(f.validUntil).Round(time.Millisecond))
	case f.state == Lost:
		return fmt.Errorf("%w: its etcd lease is gone; it must join again", ErrNotAccepting)
	}
	return fmt.Errorf("%w: it fenced its fail-over boxes (%s) after losing its etcd lease; it must join again", ErrNotAccepting, f.state)
}

// String describes the state for logs.
func (f *Fence) String() string {
	return fmt.Sprintf("fence{%s valid_until=%s deadline=%s}", f.state, f.validUntil.Format(time.RFC3339Nano), f.Deadline().Format(time.RFC3339Nano))
}
