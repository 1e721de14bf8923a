package shim

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// forwardedSignals are the signals the shim catches. SIGTERM and SIGINT ask
// for a graceful stop and reach the guest as SIGTERM; the others are passed
// on unchanged (SIGHUP to reload, for example: the supervisor signals the
// shim, never the guest directly). Every other signal keeps its default
// action; if one kills the shim, Pdeathsig kills the guest.
var forwardedSignals = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT,
	syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH,
}

// controller relays stop requests and keepalive loss to the running guest.
// It runs in its own goroutine while the main goroutine waits for the guest.
// With restart_in_place the guest changes (setGuest); a stop requested while
// no guest runs reaches the next one as soon as it exists.
type controller struct {
	signals       <-chan os.Signal
	keepaliveLost <-chan struct{}
	grace         time.Duration
	log           func(level logLevel, format string, args ...any)

	mu    sync.Mutex
	guest *childProc // nil between a guest's end and its replacement
	// cause is why the guest was stopped, for the exit record's reason; ""
	// when nobody asked (the guest exited or died on its own).
	cause    string
	stopping chan struct{} // closed when cause is first set
}

func newController(guest *childProc, signals <-chan os.Signal, keepaliveLost <-chan struct{}, grace time.Duration,
	log func(level logLevel, format string, args ...any)) *controller {
	return &controller{guest: guest, signals: signals, keepaliveLost: keepaliveLost, grace: grace, log: log, stopping: make(chan struct{})}
}

// stopCause returns why the guest was asked to stop, "" when nobody asked.
func (c *controller) stopCause() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// stopRequested returns a channel closed once a stop was requested.
func (c *controller) stopRequested() <-chan struct{} { return c.stopping }

// setCause records the first reason for a stop.
func (c *controller) setCause(cause string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause == "" {
		c.cause = cause
		close(c.stopping)
	}
}

// guestEnded forgets the guest that was just reaped: a signal sent now
// would reach nobody.
func (c *controller) guestEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.guest = nil
}

// setGuest makes g the guest signals go to. A stop requested while no
// guest ran is passed on at once.
func (c *controller) setGuest(g *childProc) {
	c.mu.Lock()
	c.guest = g
	stop := c.cause != ""
	c.mu.Unlock()
	if stop {
		c.send(syscall.SIGTERM)
	}
}

// run relays until done is closed (the last guest has been reaped).
func (c *controller) run(done <-chan struct{}) {
	var graceTimer *time.Timer
	var graceExpired <-chan time.Time
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()
	keepaliveLost := c.keepaliveLost
	for {
		select {
		case <-done:
			return
		case sig := <-c.signals:
			c.relaySignal(sig.(syscall.Signal))
		case <-keepaliveLost:
			keepaliveLost = nil // fires once
			c.log(levelWarn, "keepalive pipe closed: the supervisor is gone; stopping the guest (SIGTERM, then SIGKILL after %v)", c.grace)
			c.mu.Lock()
			if c.cause == "" {
				close(c.stopping)
			}
			c.cause = reasonKeepaliveLost // it outranks a stop request: nobody is left to hear the reply
			c.mu.Unlock()
			c.send(syscall.SIGTERM)
			graceTimer = time.NewTimer(c.grace)
			graceExpired = graceTimer.C
		case <-graceExpired:
			graceExpired = nil
			c.log(levelWarn, "guest still running %v after SIGTERM; sending SIGKILL", c.grace)
			c.mu.Lock()
			c.cause = fmt.Sprintf("%s (killed after a %v grace)", reasonKeepaliveLost, c.grace)
			c.mu.Unlock()
			c.send(syscall.SIGKILL)
		}
	}
}

// relaySignal passes one caught signal on to the guest.
func (c *controller) relaySignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		c.log(levelInfo, "received %s: asking the guest to stop (SIGTERM)", signalName(sig))
		c.setCause(fmt.Sprintf("stopped by supervisor request (%s)", signalName(sig)))
		c.send(syscall.SIGTERM)
	default:
		c.log(levelDebug, "forwarding %s to the guest", signalName(sig))
		c.send(sig)
	}
}

// send signals the guest; a guest that has just exited is not an error, and
// without a guest (between two, with restart_in_place) nothing is sent.
func (c *controller) send(sig syscall.Signal) {
	c.mu.Lock()
	g := c.guest
	c.mu.Unlock()
	if g == nil {
		return
	}
	if err := g.signal(sig); err != nil {
		c.log(levelWarn, "signal %s to guest pid %d: %v", signalName(sig), g.pid, err)
	}
}
