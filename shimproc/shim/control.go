package shim

import (
	"fmt"
	"os"
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
// It runs in its own goroutine while the main goroutine waits for the guest;
// the main goroutine reads cause only after run has returned.
type controller struct {
	guest         *childProc
	signals       <-chan os.Signal
	keepaliveLost <-chan struct{}
	grace         time.Duration
	log           func(level logLevel, format string, args ...any)

	// cause is why the guest was stopped, for the exit record's reason; ""
	// when nobody asked (the guest exited or died on its own).
	cause string
}

// run relays until done is closed (the guest has been reaped).
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
			c.cause = reasonKeepaliveLost
			c.send(syscall.SIGTERM)
			graceTimer = time.NewTimer(c.grace)
			graceExpired = graceTimer.C
		case <-graceExpired:
			graceExpired = nil
			c.log(levelWarn, "guest still running %v after SIGTERM; sending SIGKILL", c.grace)
			c.cause = fmt.Sprintf("%s (killed after a %v grace)", reasonKeepaliveLost, c.grace)
			c.send(syscall.SIGKILL)
		}
	}
}

// relaySignal passes one caught signal on to the guest.
func (c *controller) relaySignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGTERM, syscall.SIGINT:
		c.log(levelInfo, "received %s: asking the guest to stop (SIGTERM)", signalName(sig))
		if c.cause == "" {
			c.cause = fmt.Sprintf("stopped by supervisor request (%s)", signalName(sig))
		}
		c.send(syscall.SIGTERM)
	default:
		c.log(levelDebug, "forwarding %s to the guest", signalName(sig))
		c.send(sig)
	}
}

// send signals the guest; a guest that has just exited is not an error.
func (c *controller) send(sig syscall.Signal) {
	if err := c.guest.signal(sig); err != nil {
		c.log(levelWarn, "signal %s to guest pid %d: %v", signalName(sig), c.guest.pid, err)
	}
}
