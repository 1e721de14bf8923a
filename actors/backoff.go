package actors

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// restartHistory is a box's restart record: the times of recent restarts
// (for the OTP-style intensity limit) and the current backoff step. It lives
// in the boxEntry so that it survives the box actor's own restarts.
type restartHistory struct {
	mu    sync.Mutex
	times []time.Time
	step  int
}

// reset forgets past restarts (an operator started the box anew).
func (h *restartHistory) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times, h.step = nil, 0
}

// decision is what the restart policy says after an exit.
type decision struct {
	restart  bool
	delay    time.Duration
	attempt  int  // restarts within the window, this one included
	exceeded bool // the intensity limit was hit: the box fails
}

// decide applies policy p to an exit that ended a run of the given uptime.
// It records the restart when it grants one.
func (h *restartHistory) decide(p messages.RestartPolicy, exit messages.ExitRecord, uptime time.Duration, now time.Time) decision {
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
	d := backoffDelay(p, h.step)
	h.step++
	return decision{restart: true, delay: d, attempt: len(h.times)}
}

// backoffDelay is the capped exponential backoff with full jitter: a random
// delay in [0, min(MaxBackoff, InitialBackoff·2^step)]. Full jitter spreads
// the restarts of many boxes that crashed together (AWS architecture blog,
// "Exponential Backoff And Jitter"). NoJitter returns the ceiling itself.
func backoffDelay(p messages.RestartPolicy, step int) time.Duration {
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
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}
