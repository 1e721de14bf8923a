package actors

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// stopTimeout resolves a Stop's timeout: the request's, else the box's, else
// the default.
func (a *BoxActor) stopTimeout(requested time.Duration) time.Duration {
	switch {
	case requested > 0:
		return requested
	case a.spec.StopTimeout > 0:
		return a.spec.StopTimeout
	}
	return messages.DefaultStopTimeout
}

// onStop answers at once for a box that is not running, joins a stop in
// progress, and otherwise starts a graceful stop.
func (a *BoxActor) onStop(ctx actor.Context, m *messages.Stop) {
	switch {
	case a.removing:
		ctx.Respond(a.status(messages.Errorf(messages.ErrNotFound, "%q is being removed", a.id)))
	case a.rec.State == messages.StateStopping:
		a.stopWaiters = append(a.stopWaiters, ctx.Sender())
	case a.rec.State == messages.StateRestarting:
		a.cancelTimers()
		a.rec.State = messages.StateExited
		a.rec.Reason = "stopped while waiting to restart"
		sender := ctx.Sender()
		a.commit(func() { a.core.root.Send(sender, a.status(nil)) })
	case a.handle != nil && a.rec.State.Live():
		a.stopWaiters = append(a.stopWaiters, ctx.Sender())
		a.beginStop(a.stopTimeout(m.Timeout))
	case a.busy && (a.rec.State == messages.StateStarting || !a.loaded):
		// Being created, spawned or adopted: the stop applies as soon as
		// there is a process (or turns out there is none).
		a.stopRequested = true
		a.stopWaiters = append(a.stopWaiters, ctx.Sender())
	default:
		ctx.Respond(a.status(nil))
	}
}

// beginStop sends SIGTERM to the shim and schedules the Kill that follows
// if the shim has not exited when the timeout expires. The exit cancels it.
func (a *BoxActor) beginStop(timeout time.Duration) {
	a.stopRequested = true
	if a.rec.State != messages.StateStopping {
		a.rec.State = messages.StateStopping
		a.commit(nil)
	}
	if err := a.handle.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, shimproc.ErrGone) {
		a.log.WithError(err).Warn("SIGTERM to the shim failed; killing the tree")
		timeout = 0
	}
	if a.killCancel != nil {
		a.killCancel()
	}
	a.killCancel = a.core.sched.SendOnce(timeout, a.self, &messages.Kill{ID: a.id, Generation: a.rec.Generation})
	// Start waiters learn now that the box will not become ready.
	a.replyAll(&a.startWaiters, a.status(messages.Errorf(messages.ErrStartFailed, "box %q was stopped before it became ready", a.id)))
}

// onKill kills the whole tree of the current generation. A scheduled Kill
// carries the generation it was armed for; one for an older generation is a
// timer that fired after its cancellation and is ignored. A Kill from a
// caller (generation 0) kills now.
func (a *BoxActor) onKill(ctx actor.Context, m *messages.Kill) {
	fromTimer := m.Generation != 0
	if a.handle == nil || (fromTimer && m.Generation != a.rec.Generation) || (fromTimer && a.rec.State != messages.StateStopping) {
		if !fromTimer {
			ctx.Respond(a.status(nil))
		}
		return
	}
	if fromTimer {
		a.killed = true
		a.killCancel = nil
		a.log.WithField("gen", m.Generation).Info("stop timeout expired; killing the box")
	} else {
		a.stopWaiters = append(a.stopWaiters, ctx.Sender())
		a.stopRequested = true
		if a.rec.State != messages.StateStopping {
			a.rec.State = messages.StateStopping
			a.commit(nil)
		}
	}
	a.killSent = true
	h, inc, root, self, gen := a.handle, a.inc, a.core.root, a.self, a.rec.Generation
	go func() { root.Send(self, &killedTree{inc: inc, gen: gen, err: h.KillTree()}) }() // a kill never waits for a slot
}

// onSignal sends one signal to the shim through its pidfd.
func (a *BoxActor) onSignal(ctx actor.Context, m *messages.SignalBox) {
	sig, err := parseSignal(m.Signal)
	if err != nil {
		ctx.Respond(a.status(messages.AsError(err)))
		return
	}
	if a.handle == nil || !a.rec.State.Live() {
		ctx.Respond(a.status(messages.Errorf(messages.ErrNotRunning, "box %q is %s", a.id, a.rec.State)))
		return
	}
	if err := a.handle.Signal(sig); err != nil {
		ctx.Respond(a.status(messages.AsError(err)))
		return
	}
	ctx.Respond(a.status(nil))
}

// parseSignal accepts "SIGHUP", "HUP" or "1".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	if n := messages.SignalNumber(strings.ToUpper(s)); n > 0 {
		return syscall.Signal(n), nil
	}
	return 0, messages.Errorf(messages.ErrBadSpec, "unknown signal %q", s)
}

// onRemove deletes a box that is not running, or (Force) stops it first.
func (a *BoxActor) onRemove(ctx actor.Context, m *messages.Remove) {
	if a.removing {
		a.removeWaiters = append(a.removeWaiters, ctx.Sender())
		return
	}
	live := a.handle != nil && a.rec.State.Live()
	if (live || a.busy) && !m.Force {
		ctx.Respond(a.status(messages.Errorf(messages.ErrBusy, "box %q is %s; stop it first or force", a.id, a.rec.State)))
		return
	}
	a.removing = true
	a.removeWaiters = append(a.removeWaiters, ctx.Sender())
	switch {
	case live:
		if a.rec.State != messages.StateStopping {
			a.beginStop(a.stopTimeout(0))
		}
	case a.busy:
		a.stopRequested = true // applied when the spawn or adopt lands
	default:
		a.cancelTimers()
		a.beginRemove()
	}
}

// beginRemove deletes the box directory off the actor goroutine.
func (a *BoxActor) beginRemove() {
	if a.removeStarted || a.gone {
		return // several paths lead here (a stop's end, a failed start, Remove itself)
	}
	a.removeStarted = true
	a.busy = true
	inc, box, root, self := a.inc, a.box, a.core.root, a.self
	c := a.core
	go func() {
		var err error
		c.withIO(func() { err = box.Remove() })
		root.Send(self, &removed{inc: inc, err: err})
	}()
}

func (a *BoxActor) onRemoved(ctx actor.Context, m *removed) {
	a.busy = false
	if m.err != nil && !errors.Is(m.err, messages.ErrNotFound) { // not found: already gone
		a.removing, a.removeStarted = false, false
		a.log.WithError(m.err).Warn("removing the box directory failed")
		a.replyAll(&a.removeWaiters, a.status(messages.AsError(m.err)))
		return
	}
	a.core.publish(messages.BoxRemoved{EventHeader: a.header()})
	a.goneFor(ctx, a.status(nil), &a.removeWaiters, &a.stopWaiters, &a.startWaiters)
}

// goneFor ends the box for good: the root is handed the waiting callers and
// their reply, and answers them once this actor has terminated.
func (a *BoxActor) goneFor(ctx actor.Context, reply messages.BoxStatus, lists ...*[]*actor.PID) {
	var waiters []*actor.PID
	for _, l := range lists {
		waiters = append(waiters, *l...)
		*l = nil
	}
	// The root stops this actor when it handles boxGone: had the actor
	// stopped itself, the Terminated system message could overtake boxGone
	// and leave a window where the root knows neither.
	a.cancelTimers()
	a.gone = true
	ctx.Send(ctx.Parent(), &boxGone{id: a.id, waiters: waiters, reply: reply})
}

// onStopForShutdown stops the box within min(its own timeout, the cap).
func (a *BoxActor) onStopForShutdown(ctx actor.Context, m *stopForShutdown) {
	timeout := a.stopTimeout(0)
	if m.cap > 0 && m.cap < timeout {
		timeout = m.cap
	}
	a.onStop(ctx, &messages.Stop{ID: a.id, Timeout: timeout})
}
