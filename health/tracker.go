package health

import (
	"slices"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Tracker turns the probe results of one box generation into its health
// state, by the rules of Docker's HEALTHCHECK:
//
//   - the state starts as starting;
//   - a pass makes the box healthy and resets the failing streak;
//   - a failure during the start period (StartPeriod after since, and only
//     until the first pass) does not count;
//   - any other failure lengthens the streak, and Retries of them in a row
//     make the box unhealthy, from starting or healthy;
//   - an error (the supervisor could not run the probe) is logged and
//     changes nothing: it is not a verdict on the box.
//
// It is pure: no I/O, no clock (a result carries its own times), so every
// order of results can be played against it. It is not safe for concurrent
// use; its owner (the box actor) serializes the calls.
type Tracker struct {
	check  messages.HealthCheck // with defaults
	since  time.Time
	state  messages.HealthState
	streak int
	passed bool
	log    []messages.HealthResult
}

// NewTracker returns the tracker of a generation whose checks began at
// since: when the shim signalled ready, or, for a box adopted by a new
// supervisor, when the generation started (so that its start period is
// not granted twice). check must be valid; its zero settings take the
// defaults.
func NewTracker(check messages.HealthCheck, since time.Time) *Tracker {
	return &Tracker{check: check.WithDefaults(), since: since, state: messages.HealthStarting}
}

// Transition is what one result did to the state.
type Transition struct {
	From, To messages.HealthState
	// FirstHealthy is true for the first pass of the generation: what
	// ready_when: healthy waits for.
	FirstHealthy bool
	// Counted is false for a result that could not change the state: an
	// error, or a failure during the start period.
	Counted bool
}

// Changed reports whether the state changed.
func (t Transition) Changed() bool { return t.From != t.To }

// Observe feeds one result, in the order the probes ran, and returns what
// it changed.
func (t *Tracker) Observe(r messages.HealthResult) Transition {
	t.log = append(t.log, r)
	if len(t.log) > messages.MaxHealthLog {
		t.log = slices.Delete(t.log, 0, len(t.log)-messages.MaxHealthLog)
	}
	tr := Transition{From: t.state}
	switch r.Outcome {
	case messages.HealthPass:
		tr.Counted = true
		tr.FirstHealthy = !t.passed
		t.passed = true
		t.streak = 0
		t.state = messages.HealthHealthy
	case messages.HealthFail:
		if t.InStartPeriod(r.Start) {
			break
		}
		tr.Counted = true
		t.streak++
		if t.streak >= t.check.Retries {
			t.state = messages.HealthUnhealthy
		}
	default: // HealthError, or an outcome this version does not know
	}
	tr.To = t.state
	return tr
}

// InStartPeriod reports whether a probe that started at at lies in the
// start period: before the first pass and within StartPeriod of since.
func (t *Tracker) InStartPeriod(at time.Time) bool {
	return inStartPeriod(&t.check, t.since, t.passed, at)
}

// inStartPeriod is the rule shared with the Scheduler, which chooses the
// interval by it.
func inStartPeriod(check *messages.HealthCheck, since time.Time, passed bool, at time.Time) bool {
	return !passed && check.StartPeriod > 0 && at.Before(since.Add(check.StartPeriod))
}

// nextInterval is the wait after a probe that ended at at: StartInterval
// during the start period, else Interval. check has its defaults.
func nextInterval(check *messages.HealthCheck, since time.Time, passed bool, at time.Time) time.Duration {
	if inStartPeriod(check, since, passed, at) {
		return check.StartInterval
	}
	return check.Interval
}

// State returns the current state.
func (t *Tracker) State() messages.HealthState { return t.state }

// Status returns the state, the failing streak and the last results, for
// BoxStatus and inspect.
func (t *Tracker) Status() messages.BoxHealth {
	return messages.BoxHealth{State: t.state, FailingStreak: t.streak, Log: slices.Clone(t.log)}
}
