package actors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// onCreate makes a new box's directory and files off the actor goroutine.
// The requester is answered when the box is ready or has failed.
func (a *BoxActor) onCreate(ctx actor.Context, m *createBox) {
	if a.loaded || a.busy {
		ctx.Respond(a.status(messages.Errorf(messages.ErrAlreadyExists, "%q", a.id)))
		return
	}
	now := time.Now().UTC()
	a.spec = m.req
	a.rec = messages.StateRecord{ID: a.id, State: messages.StateCreated, CreatedAt: now, UpdatedAt: now}
	a.startWaiters = append(a.startWaiters, ctx.Sender())
	a.busy = true
	inc, box, spec, root, self := a.inc, a.box, a.spec, a.core.root, a.self
	go func() {
		// Prepare writes the directory and spec.json without fsync; the
		// fsyncs run in parallel with the spawn (specDurable) and the
		// caller is answered only once both are done.
		var err error
		a.core.withIO(func() { err = box.Prepare(spec) })
		root.Send(self, &created{inc: inc, err: err})
		if err == nil {
			a.core.withIO(func() { err = box.Persist() })
			root.Send(self, &specDurable{inc: inc, err: err})
		}
	}()
}

// onSpecDurable runs what waited for spec.json to be on disk.
func (a *BoxActor) onSpecDurable(m *specDurable) {
	if m.err != nil {
		// The box runs; only a power loss could now lose its spec.
		a.log.WithError(m.err).Error("making spec.json durable failed")
	}
	a.specDurable = true
	waiting := a.afterDurable
	a.afterDurable = nil
	for _, f := range waiting {
		f()
	}
}

// whenSpecDurable runs f now, or once spec.json is durable.
func (a *BoxActor) whenSpecDurable(f func()) {
	if a.specDurable {
		f()
		return
	}
	a.afterDurable = append(a.afterDurable, f)
}

// onStartExisting starts a box at rest again from its stored spec. The
// restart history is cleared: an operator's start is a fresh start, not one
// more crash within the window.
func (a *BoxActor) onStartExisting(ctx actor.Context) {
	switch {
	case a.removing || a.busy || a.rec.State == messages.StateStarting || a.rec.State == messages.StateStopping:
		ctx.Respond(a.status(messages.Errorf(messages.ErrBusy, "box %q is %s; retry", a.id, a.rec.State)))
	case a.rec.State == messages.StateRunning:
		ctx.Respond(a.status(nil))
	case a.spec.Spec.GuestEntrypoint.Executable == "":
		ctx.Respond(a.status(messages.Errorf(messages.ErrBadSpec, "box %q has no usable spec.json", a.id)))
	default: // created, exited, failed, restarting
		a.entry.history.reset()
		a.startWaiters = append(a.startWaiters, ctx.Sender())
		a.beginStart()
	}
}

func (a *BoxActor) onCreated(ctx actor.Context, m *created) {
	a.busy = false
	if m.err != nil {
		a.log.WithError(m.err).Warn("creating the box failed")
		a.goneFor(ctx, a.status(messages.AsError(m.err)), &a.startWaiters, &a.stopWaiters, &a.removeWaiters)
		return
	}
	a.entry.mu.Lock()
	a.entry.fresh = false
	a.entry.mu.Unlock()
	a.loaded = true
	if a.stopRequested { // stopped (or removed) before it ever started
		a.rec.State = messages.StateExited
		a.rec.Reason = "stopped before start"
		a.commit(func() {
			err := messages.Errorf(messages.ErrStartFailed, "box %q was stopped before it started", a.id)
			a.replyAll(&a.startWaiters, a.status(err))
			a.replyAll(&a.stopWaiters, a.status(nil))
			if a.removing {
				a.beginRemove()
			}
		})
		return
	}
	a.beginStart()
}

// beginStart moves to starting under a new generation, persists that, and
// then spawns the shim off the actor goroutine.
func (a *BoxActor) beginStart() {
	a.cancelTimers()
	a.rec.Generation++
	a.rec.State = messages.StateStarting
	a.rec.Identity = messages.Identity{}
	a.rec.Cgroup = ""
	a.rec.Reason = ""
	a.rec.StartedAt = time.Now().UTC()
	a.stopRequested, a.killed, a.killSent = false, false, false
	a.busy = true
	gen, box, spec, root, self := a.rec.Generation, a.box, a.spec, a.core.root, a.self
	log := a.log.WithField("gen", gen)
	// Spawn only after "starting" is on disk: a supervisor that dies mid-spawn
	// leaves a record that tells the next one to look for the shim.
	a.commit(func() {
		req, err := a.core.spawnRequest(box, spec, log)
		go func() {
			var h *shimproc.Handle
			if err == nil {
				a.core.withIO(func() { h, err = shimproc.Start(context.Background(), req) })
			}
			root.Send(self, &spawned{gen: gen, handle: h, err: err})
		}()
	})
}

func (a *BoxActor) onSpawned(ctx actor.Context, m *spawned) {
	if m.gen != a.rec.Generation || a.handle != nil || a.rec.State != messages.StateStarting {
		if m.handle != nil {
			// A spawn of an earlier incarnation: the process lives on and is
			// found by the next reconcile; this incarnation does not own it.
			a.log.WithField("gen", m.gen).Warn("dropping a stale spawn result")
			_ = m.handle.Close()
		}
		return
	}
	a.busy = false
	if m.err != nil {
		a.failStart(messages.AsError(m.err), nil)
		return
	}
	h := m.handle
	a.handle = h
	a.spawnedAt = time.Now()
	a.entry.setKeepalive(h.TakeKeepalive())
	a.rec.Identity = h.Identity()
	a.rec.Cgroup = h.CgroupPath()
	a.watchExit(h, m.gen)
	a.commit(func() {
		a.core.publish(messages.BoxStarted{EventHeader: a.header(), PID: h.PID()})
	})
	if a.stopRequested {
		a.beginStop(a.stopTimeout(0))
		return
	}
	root, self, gen := a.core.root, a.self, m.gen
	go func() {
		root.Send(self, &readied{gen: gen, err: h.WaitReady(context.Background())})
	}()
}

func (a *BoxActor) onReadied(ctx actor.Context, m *readied) {
	if m.gen != a.rec.Generation || a.rec.State != messages.StateStarting {
		return
	}
	if m.err != nil {
		// WaitReady has killed the tree; the exit arrives separately and
		// only records the last exit.
		a.failStart(messages.AsError(m.err), nil)
		return
	}
	a.rec.State = messages.StateRunning
	took := time.Since(a.spawnedAt)
	pid := a.rec.Identity.PID
	a.commit(func() {
		a.whenSpecDurable(func() {
			a.replyAll(&a.startWaiters, a.status(nil))
			a.core.publish(messages.BoxReady{EventHeader: a.header(), PID: pid, Took: took})
		})
	})
}

// failStart marks the box failed and answers whoever waits for the start.
func (a *BoxActor) failStart(err *messages.Error, exit *messages.ExitRecord) {
	a.busy = false
	a.rec.State = messages.StateFailed
	a.rec.Reason = err.Msg
	if exit != nil {
		a.rec.LastExit = exit
	}
	if len(a.startWaiters) > 0 {
		// The caller gets the error; the log need not repeat it loudly.
		a.log.WithField("reason", err.Msg).Info("box failed to start")
	} else {
		a.log.WithField("reason", err.Msg).Warn("box failed to start")
	}
	a.commit(func() {
		a.replyAll(&a.startWaiters, a.status(err))
		a.replyAll(&a.stopWaiters, a.status(nil))
		a.core.publish(messages.BoxFailed{EventHeader: a.header(), Reason: err.Msg})
		if a.removing && a.handle == nil {
			a.beginRemove() // a Remove arrived while the box was starting
		}
	})
}

// onExited handles the end of the current generation's shim: a requested
// stop, a start that died before ready, or a crash or exit that the restart
// policy judges.
func (a *BoxActor) onExited(ctx actor.Context, m *exited) {
	if m.gen != a.rec.Generation || a.handle == nil {
		return
	}
	if a.killCancel != nil {
		a.killCancel()
		a.killCancel = nil
	}
	pid := a.handle.PID()
	a.closeHandle()
	a.entry.setKeepalive(nil)
	exit := m.exit
	if a.killSent && !exit.Known() {
		// An adopted shim killed with SIGKILL leaves no exit record, but
		// this supervisor sent the signal.
		exit.ExitCode, exit.Signal, exit.Reason = -1, "SIGKILL", "killed"
	}
	if a.killed {
		exit.Reason = "killed after stop timeout"
	}
	a.rec.LastExit = &exit
	a.rec.Identity = messages.Identity{}
	uptime := time.Since(a.spawnedAt)
	exitedEv := func(requested bool) messages.BoxExited {
		return messages.BoxExited{EventHeader: a.header(), PID: pid, Exit: exit, Requested: requested}
	}

	switch {
	case a.rec.State == messages.StateFailed:
		// The start already failed (ready timeout, ready pipe closed); the
		// exit completes the record and is announced for those who want its
		// code (127 for a guest that could not exec).
		a.commit(func() { a.core.publish(exitedEv(false)) })
	case a.stopRequested:
		a.rec.State = messages.StateExited
		a.rec.Reason = "stopped"
		if a.removing {
			a.commit(func() {
				a.core.publish(exitedEv(true))
				a.beginRemove()
			})
			return
		}
		a.commit(func() {
			a.replyAll(&a.stopWaiters, a.status(nil))
			a.replyAll(&a.startWaiters, a.status(messages.Errorf(messages.ErrStartFailed, "box %q was stopped before it became ready", a.id)))
			a.core.publish(exitedEv(true))
		})
	case a.rec.State == messages.StateStarting:
		a.failStart(messages.Errorf(messages.ErrStartFailed, "box %q: shim exited before ready: %s", a.id, exit), &exit)
	default:
		a.judgeExit(exit, uptime, exitedEv(false))
	}
}

// judgeExit applies the restart policy to an exit nobody asked for.
func (a *BoxActor) judgeExit(exit messages.ExitRecord, uptime time.Duration, ev messages.BoxExited) {
	policy := a.spec.Restart.WithDefaults()
	d := a.entry.history.decide(policy, exit, uptime, time.Now())
	switch {
	case d.restart:
		a.rec.State = messages.StateRestarting
		a.rec.Restarts++
		a.rec.Reason = fmt.Sprintf("restarting after %s", exit)
		gen := a.rec.Generation
		a.commit(func() {
			a.core.publish(ev)
			a.core.publish(messages.BoxRestarting{EventHeader: a.header(), Attempt: d.attempt, Delay: d.delay})
		})
		a.log.WithFields(map[string]any{"gen": gen, "delay": d.delay, "attempt": d.attempt}).Info("box exited; restarting")
		a.restartCancel = a.core.sched.SendOnce(d.delay, a.self, &restartNow{gen: gen})
	case d.exceeded:
		a.rec.State = messages.StateFailed
		a.rec.Reason = fmt.Sprintf("restart limit exceeded (%d restarts within %s)", d.attempt, policy.Window)
		reason := a.rec.Reason
		a.log.WithField("reason", reason).Warn("box failed")
		a.commit(func() {
			a.core.publish(ev)
			a.core.publish(messages.BoxFailed{EventHeader: a.header(), Reason: reason})
		})
	default:
		a.rec.State = messages.StateExited
		a.rec.Reason = exit.Reason
		a.commit(func() { a.core.publish(ev) })
	}
}

func (a *BoxActor) onRestartNow(ctx actor.Context, m *restartNow) {
	if m.gen != a.rec.Generation || a.rec.State != messages.StateRestarting {
		return // cancelled, or overtaken by a Stop or Remove
	}
	a.restartCancel = nil
	a.beginStart()
}

// onMetrics samples the box tree off the actor goroutine; the sampler
// answers the requester directly.
func (a *BoxActor) onMetrics(ctx actor.Context) {
	h := a.handle
	if h == nil || !a.rec.State.Live() {
		ctx.Respond(&messages.MetricsResponse{
			Metrics: messages.BoxMetrics{ID: a.id},
			Err:     messages.Errorf(messages.ErrNotRunning, "box %q is %s", a.id, a.rec.State),
		})
		return
	}
	sender, root, id := ctx.Sender(), a.core.root, a.id
	c := a.core
	go func() {
		var m messages.BoxMetrics
		var err error
		c.withIO(func() { m, err = h.Metrics() })
		m.ID = id
		if errors.Is(err, shimproc.ErrGone) {
			err = messages.Errorf(messages.ErrNotRunning, "box %q exited", id)
		}
		root.Send(sender, &messages.MetricsResponse{Metrics: m, Err: messages.AsError(err)})
	}()
}
