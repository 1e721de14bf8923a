package lifecycle

import (
	"sync"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// History is a box's restart record: the times of recent restarts (for the
// OTP-style intensity limit) and the current backoff step. The actor keeps
// it outside the machine, so that an actor restart does not reset the
// limit. It is safe for concurrent use.
type History struct {
	mu    sync.Mutex
	times []time.Time
	step  int
}

// reset forgets past restarts (an operator started the box anew).
func (h *History) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times, h.step = nil, 0
}

// snapshot returns the latest recorded restart times, at most keep of them
// (the intensity limit looks at no more; an unlimited policy keeps none, so
// that a crash loop does not grow the box's state record), and the backoff
// step, for the box's state record.
func (h *History) snapshot(keep int) ([]time.Time, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	times := h.times[max(len(h.times)-max(keep, 0), 0):]
	if len(times) == 0 {
		return nil, h.step
	}
	return append([]time.Time(nil), times...), h.step
}

// seed takes the restart times and backoff step of a record written by an
// earlier supervisor, unless this one has recorded restarts of its own
// (an actor restart reloads a record the history is newer than).
func (h *History) seed(times []time.Time, step int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.times) > 0 || h.step > 0 {
		return
	}
	h.times, h.step = append([]time.Time(nil), times...), max(step, 0)
}

// decision is what the restart policy says after an exit.
type decision struct {
	restart  bool
	delay    time.Duration
	attempt  int  // restarts within the window, this one included
	exceeded bool // the intensity limit was hit: the box fails
}

// decide applies policy p to an exit that ended a run of the given uptime.
// It records the restart when it grants one. jitter(n) returns a uniform
// random number in [0, n].
func (h *History) decide(p messages.RestartPolicy, exit messages.ExitRecord, uptime time.Duration, now time.Time, jitter func(int64) int64) decision {
	p = p.WithDefaults()
	if !p.ShouldRestart(exit) {
		return decision{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if uptime >= p.StableAfter {
		h.step = 0 // a run that stayed up long enough resets the backoff
	}
	kept := h.times[:0]
	for _, t := range h.times {
		if now.Sub(t) < p.Window {
			kept = append(kept, t)
		}
	}
	h.times = kept
	if p.MaxRestarts >= 0 && len(h.times) >= p.MaxRestarts {
		return decision{exceeded: true, attempt: len(h.times)}
	}
	h.times = append(h.times, now)
	d := backoffDelay(p, h.step, jitter)
	h.step++
	return decision{restart: true, delay: d, attempt: len(h.times)}
}

// restartsAtOnce reports, without recording anything, whether decide would
// grant a restart with no delay at all for this exit: only then may a shim
// restart its guest in place. A delay drawn from a jittered backoff could
// be zero by chance; only a policy whose backoff ceiling is zero counts.
func (h *History) restartsAtOnce(p messages.RestartPolicy, exit messages.ExitRecord, uptime time.Duration, now time.Time) bool {
	p = p.WithDefaults()
	if !p.ShouldRestart(exit) {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	step := h.step
	if uptime >= p.StableAfter {
		step = 0
	}
	if p.MaxRestarts >= 0 {
		recent := 0
		for _, t := range h.times {
			if now.Sub(t) < p.Window {
				recent++
			}
		}
		if recent >= p.MaxRestarts {
			return false
		}
	}
	return backoffDelay(p, step, func(int64) int64 { return 1 }) == 0
}

// backoffDelay is the capped exponential backoff with full jitter: a random
// delay in [0, min(MaxBackoff, InitialBackoff·2^step)]. Full jitter spreads
// the restarts of many boxes that crashed together (AWS architecture blog,
// "Exponential Backoff And Jitter"). NoJitter returns the ceiling itself; a
// negative InitialBackoff restarts at once.
func backoffDelay(p messages.RestartPolicy, step int, jitter func(int64) int64) time.Duration {
	ceiling := p.InitialBackoff
	for i := 0; i < step && ceiling < p.MaxBackoff; i++ {
		ceiling *= 2
	}
	if ceiling > p.MaxBackoff {
		ceiling = p.MaxBackoff
	}
	if ceiling <= 0 {
		return 0
	}
	if p.NoJitter {
		return ceiling
	}
	return time.Duration(jitter(int64(ceiling)))
}

// retryDelay is the wait before verifying an unknown box again after n
// consecutive unverified outcomes: 100 ms doubling to 30 s. No jitter: a
// transient shortage (EMFILE) hits many boxes at once, but each retry is one
// cheap /proc read.
func retryDelay(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 30*time.Second; i++ {
		d *= 2
	}
	return min(d, 30*time.Second)
}
