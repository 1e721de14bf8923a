package actors

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// do carries out one effect of the machine.
func (a *boxActor) do(ctx actor.Context, e lifecycle.Effect) {
	switch e := e.(type) {
	case lifecycle.Load:
		a.load()
	case lifecycle.CreateBox:
		a.create()
	case lifecycle.Persist:
		a.entry.persist.submit(a.inc, e.Seq, e.Rec)
	case lifecycle.Spawn:
		a.spawn(e)
	case lifecycle.Watch:
		a.watch(e.Gen, true)
	case lifecycle.WatchExit:
		a.watch(e.Gen, false)
	case lifecycle.SendSignal:
		a.signal(e)
	case lifecycle.KillTree:
		a.killTree(e.Gen)
	case lifecycle.KillCgroup:
		a.killCgroup(e)
	case lifecycle.Verify:
		a.verify(e)
	case lifecycle.Release:
		a.releaseGen(e)
	case lifecycle.Arm:
		a.arm(e)
	case lifecycle.Disarm:
		if cancel := a.timers[e.Timer.Kind()]; cancel != nil {
			cancel()
			delete(a.timers, e.Timer.Kind())
		}
	case lifecycle.Reply:
		a.reply(e.W, e.Status)
	case lifecycle.Publish:
		a.core.publish(e.Event)
	case lifecycle.Notify:
		ctx.Send(ctx.Parent(), &statusChanged{status: e.Status, initial: e.Initial})
	case lifecycle.RemoveDir:
		a.removeDir()
	case lifecycle.WriteSpec:
		a.writeSpec(e.Set)
	case lifecycle.StartChecks:
		a.startChecks(e)
	case lifecycle.StopChecks:
		a.stopChecks()
	case lifecycle.End:
		a.end(ctx, e)
	case lifecycle.Log:
		a.logEffect(e)
	case lifecycle.AnswerGuest:
		a.answerGuest(e)
	}
}

// create writes the new box's directory and spec.json (after checking the
// shim binary and that the spec's resource limits can be enforced, so that
// a start that cannot run leaves nothing behind), then
// makes them durable in parallel with the spawn.
func (a *boxActor) create() {
	inc, box, spec, c := a.inc, a.box, a.spec, a.core
	c.goHelper(func() {
		var err error
		c.withIO(func() {
			if err = c.checkSupported(spec.Spec); err == nil {
				err = box.Prepare(spec)
			}
		})
		a.deliverAs(inc, lifecycle.Prepared{Err: err})
		if err == nil {
			c.withIO(func() { err = box.Persist() })
			a.deliverAs(inc, lifecycle.SpecDurable{Err: err})
		}
	})
}

// deliverAs is deliver for a goroutine (it names the incarnation it knew).
func (a *boxActor) deliverAs(inc uint64, ev lifecycle.Event) {
	send := func(ev lifecycle.Event) { a.core.root.Send(a.self, &boxEvent{inc: inc, ev: ev}) }
	if h := a.core.hooks; h != nil && h.deliver != nil {
		h.deliver(a.id, ev, send)
		return
	}
	send(ev)
}

// spawn starts generation e.Gen's shim. A box never gets a second shim:
// whatever of it is still in its cgroup is adopted (a shim of the box) or
// killed (anything else) first, and a process there that cannot be checked
// keeps the spawn from happening.
func (a *boxActor) spawn(e lifecycle.Spawn) {
	inc, self, c, box, boxCg := a.inc, a.self, a.core, a.box, a.cgroup
	bin, err := c.shimFor(a.spec.Spec.Engine)
	req := shimproc.SpawnRequest{
		Box:          box,
		Binary:       bin,
		Spec:         a.spec.Spec,
		ReadyTimeout: a.spec.ReadyTimeout,
		Cgroup:       c.cfg.Cgroup,
		CgroupParent: c.cgroupParent,
		Generation:   e.Gen,
		SpawnToken:   e.Token,
		Logger:       a.log.WithField("gen", e.Gen),
	}
	check := shimproc.ShimCheck{Binaries: c.shimBinaries(), Cwd: true}
	offer := e.RestartInPlace && req.Spec.ReadyTransport == ""
	c.goHelper(func() {
		msg := &spawned{inc: inc, gen: e.Gen, err: err}
		if msg.err == nil {
			// The engine may have changed since the box was created.
			c.withIO(func() {
				req.Spec.RestartInPlace = offer && c.honoursRestartInPlace(bin)
				msg.err = c.checkSupported(req.Spec)
			})
		}
		if msg.err == nil && boxCg != "" {
			msg.handle, msg.err = a.clearCgroup(boxCg, check)
			msg.adopted = msg.handle != nil
		}
		if msg.err == nil && msg.handle == nil {
			c.withIO(func() { msg.handle, msg.err = shimproc.Start(context.Background(), req) })
		}
		if msg.handle != nil {
			c.transit.put(msg.handle, req.Spec.Detach)
		}
		c.root.Send(self, msg)
	})
}

// clearCgroup makes sure no process of the box is left in its cgroup
// before a spawn: a shim of the box found there is returned (adopted), any
// other process is killed. It runs on a helper goroutine.
func (a *boxActor) clearCgroup(boxCg string, check shimproc.ShimCheck) (*shimproc.Handle, error) {
	var busy bool
	var err error
	a.core.withIO(func() { busy, err = shimproc.CgroupPopulated(boxCg) })
	if err != nil {
		return nil, messages.Errorf(messages.ErrUnverified, "checking the box's cgroup %s: %w", boxCg, err)
	}
	if !busy {
		return nil, nil
	}
	var h *shimproc.Handle
	a.core.withIO(func() {
		h, err = shimproc.FindShim(a.box, shimproc.FindOptions{Cgroup: boxCg, Check: check, Logger: a.log})
	})
	var strays *shimproc.StraysError
	switch {
	case err == nil:
		a.log.WithField("pid", h.PID()).Warn("a shim of the box was still running in its cgroup; adopting it instead of starting another")
		return h, nil
	case errors.As(err, &strays):
		a.log.WithField("pids", strays.PIDs).Warn("killing processes left in the box's cgroup before starting it")
		if err := killAndDrain(boxCg); err != nil {
			return nil, messages.Errorf(messages.ErrUnverified, "clearing the box's cgroup: %w", err)
		}
		return nil, nil
	case errors.Is(err, shimproc.ErrGone):
		return nil, nil // it emptied meanwhile
	}
	return nil, messages.Errorf(messages.ErrUnverified, "checking what runs in the box's cgroup: %w", err)
}

// cgroupDrainWait bounds the wait for a killed cgroup to empty.
const cgroupDrainWait = 10 * time.Second

// killAndDrain SIGKILLs a box cgroup and waits until it is empty.
func killAndDrain(dir string) error {
	if err := shimproc.KillCgroup(dir); err != nil {
		return err
	}
	return pollCgroupEmpty(dir, cgroupDrainWait)
}

// pollCgroupEmpty polls a cgroup's populated flag until it clears: killed
// members stay listed until the kernel has torn them down.
func pollCgroupEmpty(dir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	pause := time.Millisecond
	for {
		busy, err := shimproc.CgroupPopulated(dir)
		if err != nil {
			return err
		}
		if !busy {
			return nil
		}
		if time.Now().After(deadline) {
			return messages.Errorf(messages.ErrCgroup, "%s still holds processes %v after SIGKILL", dir, limit)
		}
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

func (a *boxActor) onSpawned(ctx actor.Context, m *spawned) {
	if m.handle != nil {
		a.core.transit.take(m.handle)
	}
	if m.inc != a.inc {
		if m.handle != nil {
			// A spawn of an earlier incarnation: the process lives on and is
			// found in the box's cgroup by the next spawn or verification.
			_ = m.handle.Close()
		}
		return
	}
	ev := lifecycle.Spawned{Gen: m.gen, Adopted: m.adopted, Err: m.err}
	if h := m.handle; h != nil {
		a.handles[m.gen] = h
		if !m.adopted {
			a.entry.setKeepalive(m.gen, h.TakeKeepalive())
		}
		ev.Proc = lifecycle.Proc{Identity: h.Identity(), Cgroup: h.CgroupPath()}
	}
	a.feed(ctx, ev)
}

// watch follows generation gen's shim: the ready handshake first (ready is
// true), then the exit. One goroutine sends both, in that order; it parks on
// the handle's channels, not on an OS thread.
func (a *boxActor) watch(gen uint64, ready bool) {
	h := a.handles[gen]
	if h == nil {
		return
	}
	inc, stop := a.inc, a.stop
	a.core.goHelper(func() {
		if ready {
			err := h.WaitReady(context.Background())
			var exit *messages.ExitRecord
			if err != nil {
				select {
				case <-h.Exited():
					x := h.ExitStatus()
					exit = &x
				default:
				}
			}
			a.deliverAs(inc, lifecycle.Ready{Gen: gen, Err: err, Exit: exit})
			if exit != nil {
				return
			}
			if err == nil && h.RestartsInPlace() {
				a.followGuests(inc, gen, h)
			}
		}
		select {
		case <-h.Exited():
			a.deliverAs(inc, lifecycle.ProcExited{Gen: gen, Exit: h.ExitStatus()})
		case <-stop:
		}
	})
}

// answerGuest answers the question of generation gen's shim, whose guest
// ended: restart it in place, or end. A shim whose handle is gone has lost
// its line and ends by itself.
func (a *boxActor) answerGuest(e lifecycle.AnswerGuest) {
	h := a.handles[e.Gen]
	if h == nil {
		return
	}
	if err := h.AnswerGuest(e.Restart); err != nil {
		a.log.WithError(err).Warn("answering the shim about a restart in place failed; it ends, and the box restarts the ordinary way")
	}
}

// honoursRestartInPlace reports whether the engine's shim binary bin
// restarts its guest in place when asked (its capabilities list the
// field). A shim that cannot say is not offered it: the ordinary restart
// path serves it.
func (c *core) honoursRestartInPlace(bin string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), capabilityTimeout)
	defer cancel()
	caps, err := shimproc.Capabilities(ctx, bin)
	if err != nil {
		return false
	}
	if caps.Legacy {
		// Legitimate (an older shim, or a VMM wrapper), but worth saying
		// once: a stale build looks just like it.
		if _, seen := c.legacyShims.LoadOrStore(bin, true); !seen {
			c.log.WithField("shim", bin).Warn("the shim answers no --capabilities (shim protocol before revision 2): it is treated as honouring no optional spec field, and its guests restart through a new shim")
		}
	}
	_, ok := caps.Honours(messages.FieldRestartInPlace)
	return ok
}

// followGuests passes the reports of a shim that restarts its guest in
// place to the machine, in order, until its restart line ends (the shim
// exited, or the handle was let go of); the exit follows.
func (a *boxActor) followGuests(inc, gen uint64, h *shimproc.Handle) {
	for {
		ev, err := h.NextGuestEvent()
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			a.log.WithError(err).Warn("the shim's restart line failed; the box restarts the ordinary way from now on")
			return
		case ev.Exit != nil:
			a.deliverAs(inc, lifecycle.GuestExited{Gen: gen, Exit: *ev.Exit})
		default:
			a.deliverAs(inc, lifecycle.GuestStarted{Gen: gen, PID: ev.StartedPID})
		}
	}
}

// signal sends one signal through the generation's pidfd (a syscall that
// does not block).
func (a *boxActor) signal(e lifecycle.SendSignal) {
	h := a.handles[e.Gen]
	var err error
	if h == nil {
		err = messages.Errorf(messages.ErrNotRunning, "box %q has no running shim", a.id)
	} else {
		err = h.Signal(syscall.Signal(e.Sig))
	}
	if e.W != 0 {
		st := e.Status
		st.Err = messages.AsError(err)
		a.reply(e.W, st)
		return
	}
	if err != nil && !errors.Is(err, shimproc.ErrGone) {
		a.log.WithError(err).Warn("SIGTERM to the shim failed; killing the tree")
		a.deliver(lifecycle.KillTimer{Gen: e.Gen})
	}
}

// killTree SIGKILLs the generation's tree; a kill never waits for a slot.
func (a *boxActor) killTree(gen uint64) {
	h := a.handles[gen]
	if h == nil {
		a.deliver(lifecycle.KillDone{Gen: gen})
		return
	}
	inc := a.inc
	a.core.goHelper(func() { a.deliverAs(inc, lifecycle.KillDone{Gen: gen, Err: h.KillTree()}) })
}

// killCgroup kills the cgroup of a box whose process could not be verified
// and reports its end once the cgroup is empty. Only the box's own cgroup
// (or a generation's under it) is ever killed this way.
func (a *boxActor) killCgroup(e lifecycle.KillCgroup) {
	inc, boxCg := a.inc, a.cgroup
	a.core.goHelper(func() {
		if boxCg == "" || (e.Cgroup != boxCg && !strings.HasPrefix(e.Cgroup, boxCg+"/")) {
			a.deliverAs(inc, lifecycle.KillDone{Gen: e.Gen, Err: messages.Errorf(messages.ErrCgroup, "refusing to kill %q: not the box's cgroup", e.Cgroup)})
			return
		}
		if err := killAndDrain(e.Cgroup); err != nil {
			a.deliverAs(inc, lifecycle.KillDone{Gen: e.Gen, Err: err})
			return
		}
		exit := messages.ExitRecord{ExitCode: 128 + 9, Signal: "SIGKILL", Reason: "killed while unverified",
			FinishedAt: time.Now().UTC(), Source: messages.SourceNone}
		a.deliverAs(inc, lifecycle.ProcExited{Gen: e.Gen, Exit: exit})
	})
}

// verify verifies the recorded (or searched for, or handed-over) process
// off the actor goroutine.
func (a *boxActor) verify(e lifecycle.Verify) {
	inc, self, c, box, boxCg, log := a.inc, a.self, a.core, a.box, a.cgroup, a.log.WithField("gen", e.Gen)
	check := shimproc.ShimCheck{Binaries: c.shimBinaries(), Cwd: true}
	c.goHelper(func() {
		msg := &verified{inc: inc, gen: e.Gen}
		var err error
		c.withIO(func() {
			switch {
			case e.PID != 0:
				msg.handle, err = shimproc.AdoptPID(box, e.PID, shimproc.AdoptOptions{CgroupParent: boxCg, Shim: &check, Logger: log})
			case !e.Identity.Zero():
				opts := shimproc.AdoptOptions{CgroupParent: boxCg, Shim: &check, Logger: log}
				if boxCg != "" {
					opts.Cgroup = e.Cgroup
				}
				msg.handle, err = shimproc.Adopt(box, e.Identity, opts)
			default:
				msg.handle, err = shimproc.FindShim(box, shimproc.FindOptions{Cgroup: e.Cgroup, Token: e.Token, Check: check, Logger: log})
			}
		})
		var strays *shimproc.StraysError
		switch {
		case err == nil:
			msg.outcome = lifecycle.Verified
		case errors.As(err, &strays):
			// No shim of the box, only what it left in its cgroup: those
			// are the box's to kill, and then it is gone.
			log.WithField("pids", strays.PIDs).Warn("killing processes left in the box's cgroup without its shim")
			if kerr := killAndDrain(strays.Cgroup); kerr != nil {
				msg.outcome, msg.err = lifecycle.Unverified, kerr
			} else {
				msg.outcome, msg.exit = lifecycle.Vanished, messages.UnknownExit(time.Now().UTC())
			}
		case errors.Is(err, shimproc.ErrGone):
			msg.outcome, msg.exit, msg.err = lifecycle.Vanished, a.exitSince(e.StartedAt), err
		case errors.Is(err, messages.ErrIdentityMismatch):
			msg.outcome, msg.err = lifecycle.Mismatch, err
		default:
			msg.outcome, msg.err = lifecycle.Unverified, err
		}
		c.root.Send(self, msg)
	})
}

// exitSince returns the box's exit.json when it was written by the run that
// started at since (else an unknown exit).
func (a *boxActor) exitSince(since time.Time) messages.ExitRecord {
	ex, err := a.box.ReadExit()
	if err == nil && !ex.FinishedAt.Before(since.Truncate(time.Second)) {
		ex.Source = messages.SourceExitFile
		ex.Reason = logging.Scrub(ex.Reason) // a shim's text: it may quote the spec
		return ex
	}
	return messages.UnknownExit(time.Now().UTC())
}

func (a *boxActor) onVerified(ctx actor.Context, m *verified) {
	if m.inc != a.inc {
		if m.handle != nil {
			_ = m.handle.Close()
		}
		return
	}
	ev := lifecycle.Adopted{Gen: m.gen, Outcome: m.outcome, Exit: m.exit, Err: m.err}
	if h := m.handle; h != nil {
		a.handles[m.gen] = h
		ev.Proc = lifecycle.Proc{Identity: h.Identity(), Cgroup: h.CgroupPath()}
	}
	a.feed(ctx, ev)
}

// releaseGen lets go of a generation's process: its pidfd is closed, its
// keepalive dropped, and its cgroup removed off the actor goroutine once the
// process has exited (a live process, adopted too late, is left alone).
func (a *boxActor) releaseGen(e lifecycle.Release) {
	h := a.handles[e.Gen]
	delete(a.handles, e.Gen)
	a.entry.dropKeepalive(e.Gen)
	c, log := a.core, a.log
	if h != nil {
		exited := false
		select {
		case <-h.Exited():
			exited = true
		default:
		}
		_ = h.Close()
		if !exited {
			return
		}
		c.removeCgroupLater(func() {
			sweepGenCgroup(h.CgroupPath(), c.withCgroupSlot, log)
			var err error
			c.withCgroupSlot(func() { err = h.RemoveCgroup() })
			if err != nil {
				log.WithError(err).Debug("removing the box cgroup failed")
			}
		})
		return
	}
	if e.Cgroup != "" && a.cgroup != "" && strings.HasPrefix(e.Cgroup, a.cgroup+"/") {
		c.removeCgroupLater(func() { c.withCgroupSlot(func() { shimproc.RemoveGenCgroup(e.Cgroup) }) })
	}
}

// sweepGenCgroup kills what is left in an exited shim's generation cgroup
// (the handle's, so verified to be the box's): a shim killed with SIGKILL
// could not sweep its guest's children, which would otherwise live on in a
// box at rest.
//
// The look runs inside slot (the removals' bound on blocking calls); the
// kill and the wait for the cgroup to drain, which may take seconds, do not.
func sweepGenCgroup(dir string, slot func(func()), log logrus.FieldLogger) {
	if dir == "" {
		return
	}
	var busy bool
	var err error
	slot(func() { busy, err = shimproc.CgroupPopulated(dir) })
	if err != nil || !busy {
		return
	}
	log.WithField("cgroup", dir).Warn("the box's shim left processes in its cgroup; killing them")
	if err := killAndDrain(dir); err != nil {
		log.WithError(err).Warn("killing what the shim left failed")
	}
}

// arm schedules a timer event to the actor itself with protoactor's
// scheduler (replacing one of the same type).
func (a *boxActor) arm(e lifecycle.Arm) {
	k := e.Timer.Kind()
	if cancel := a.timers[k]; cancel != nil {
		cancel()
	}
	msg := &timerFired{inc: a.inc, ev: e.Timer}
	if e.Delay <= 0 {
		delete(a.timers, k)
		a.core.root.Send(a.self, msg)
		return
	}
	if kt, ok := e.Timer.(lifecycle.KillTimer); ok && a.core.hooks == nil {
		if h := a.handles[kt.Gen]; h != nil {
			a.timers[k] = a.armKill(e.Delay, kt, h)
			return
		}
	}
	a.timers[k] = a.core.sched.SendOnce(e.Delay, a.self, msg)
}

// armKill arms a stop timeout that kills generation kt.Gen's tree itself
// when it fires. The ordinary path (a timer message, the machine, a
// KillTree effect on a helper goroutine) puts three scheduling delays
// between the timeout and the kill, milliseconds on a loaded machine.
//
// The machine still decides, and hears of the timeout first: the event is
// queued in the mailbox as the machine's own event before the kill can
// cause an exit, and the mailbox is first in, first out, so the exit finds
// the box Killing (marked killed). That holds only because the event skips
// the timerFired hop; with a test's delivery hook, which may hold or
// reorder timers, the ordinary path is kept. The machine's own KillTree
// that follows finds nothing left to kill. A timer cancelled too late
// (the shim exited at the same instant) kills what was exiting anyway,
// since the stop had begun, or nothing: a released handle refuses, and a
// later generation has a cgroup and a process group of its own. The timer
// is a timerfd (afterFuncPrecise): Go's own timers fire up to a millisecond
// late.
func (a *boxActor) armKill(delay time.Duration, kt lifecycle.KillTimer, h *shimproc.Handle) func() {
	root, self, ev := a.core.root, a.self, &boxEvent{inc: a.inc, ev: kt}
	return afterFuncPrecise(delay, func() {
		root.Send(self, ev)
		_ = h.KillTree() // a failure is for the machine's own KillTree to report
	})
}

// removeDir deletes the box directory and its cgroups off the actor
// goroutine. A directory already gone may be an earlier removal's that hid
// it and failed to delete its files (the box stayed, and the error said a
// removal again deletes them): this is that retry.
func (a *boxActor) removeDir() {
	inc, box, boxCg, c, log := a.inc, a.box, a.cgroup, a.core, a.log
	c.goHelper(func() {
		var err error
		c.withIO(func() {
			err = box.Remove()
			if errors.Is(err, messages.ErrNotFound) {
				if serr := box.SweepRemoved(); serr != nil {
					err = serr
				}
			}
		})
		if err == nil || errors.Is(err, messages.ErrNotFound) {
			if cerr := shimproc.RemoveBoxCgroup(boxCg); cerr != nil {
				log.WithError(cerr).Warn("removing the box's cgroup failed")
			}
		}
		a.deliverAs(inc, lifecycle.Removed{Err: err, Hidden: errors.Is(err, layout.ErrFilesLeft)})
	})
}

// writeSpec rewrites spec.json, durably, with an update applied, off the
// actor goroutine; the actor's copy changes once the write has landed.
func (a *boxActor) writeSpec(set lifecycle.Settings) {
	next := a.spec
	if set.Restart != nil {
		next.Restart = *set.Restart
	}
	if set.StopTimeout != nil {
		next.StopTimeout = *set.StopTimeout
	}
	if set.Labels != nil {
		next.Labels = set.Labels
	}
	inc, box, c := a.inc, a.box, a.core
	c.goHelper(func() {
		var err error
		c.withIO(func() { err = box.WriteSpec(next) })
		if err == nil {
			c.root.Send(a.self, &specUpdated{inc: inc, spec: next})
		}
		a.deliverAs(inc, lifecycle.SpecWritten{Err: err})
	})
}

// end hands the box's last callers to the root, which answers them once
// this actor has stopped.
func (a *boxActor) end(ctx actor.Context, e lifecycle.End) {
	for k, cancel := range a.timers {
		cancel()
		delete(a.timers, k)
	}
	var replies []goneReply
	for _, r := range e.Replies {
		if pid := a.waiters[r.W]; pid != nil {
			delete(a.waiters, r.W)
			replies = append(replies, goneReply{to: pid, status: r.Status})
		}
	}
	a.gone = true
	// The root stops this actor when it handles boxGone: had the actor
	// stopped itself, Terminated could overtake boxGone and leave a window
	// where the root knows neither.
	ctx.Send(ctx.Parent(), &boxGone{id: a.id, replies: replies})
}

func (a *boxActor) logEffect(e lifecycle.Log) {
	entry := a.log.WithField("gen", a.m.Record().Generation)
	if len(e.Fields) > 0 {
		entry = entry.WithFields(e.Fields)
	}
	if e.Err != nil {
		entry = entry.WithError(e.Err)
	}
	switch e.Level {
	case "error":
		entry.Error(e.Msg)
	case "warn":
		entry.Warn(e.Msg)
	default:
		entry.Info(e.Msg)
	}
}

// checkShim fails with messages.ErrShimNotFound when the engine's shim
// binary is missing, not an executable file, or controlled by another user
// (shimproc.CheckShimBinary), before anything of the box is created. Each
// spawn checks it again.
func (c *core) checkShim(engine messages.EngineKind) error {
	bin, err := c.shimFor(engine)
	if err != nil {
		return err
	}
	if bin == "" {
		if c.findShimErr != nil && (engine == "" || engine == messages.EngineProcess) {
			return c.findShimErr // names the candidates refused, and why
		}
		return messages.Errorf(messages.ErrShimNotFound, "%s (set Config.ShimBinary)", ShimBinaryName)
	}
	_, err = shimproc.CheckShimBinary(bin)
	return err
}

// capabilityTimeout bounds asking a shim binary for its capabilities.
const capabilityTimeout = 5 * time.Second

// checkSupported refuses a spec the engine cannot honour in full (every
// field it sets, including the resource limits the box cgroup would have
// to enforce), before anything is created: messages.ErrUnsupported, which
// also matches ErrBadSpec. It runs the shim once per binary (cached).
func (c *core) checkSupported(spec messages.InstanceSpec) error {
	if err := c.checkShim(spec.Engine); err != nil {
		return err
	}
	if len(spec.SetOptionalFields()) == 0 {
		// Every engine honours the core fields, and none of them needs a
		// cgroup controller: skip reading the cgroup files and mountinfo,
		// about 50 µs of every plain start.
		return nil
	}
	bin, _ := c.shimFor(spec.Engine)
	ctx, cancel := context.WithTimeout(context.Background(), capabilityTimeout)
	defer cancel()
	// The cgroup controllers boxsup can apply to a box's cgroup here right
	// now (cgroup v2 where delegated, else the v1 hierarchies of a hybrid
	// host): a spec whose limits need another is refused rather than run
	// without them, and the refusal says why.
	rs := shimproc.SupportedResources(c.cfg.Cgroup, c.cgroupParent)
	var ctls []messages.CgroupController
	for _, name := range rs.Controllers() {
		ctls = append(ctls, messages.CgroupController(name))
	}
	err := shimproc.CheckSupported(ctx, bin, &spec, ctls)
	var refusal *messages.Error
	if rs.Why != "" && errors.As(err, &refusal) && refusal.Code == messages.ErrUnsupported && strings.Contains(refusal.Msg, "cgroup") {
		return &messages.Error{Code: messages.ErrUnsupported, Msg: refusal.Msg + " (" + rs.Why + ")"}
	}
	return err
}

// goHelper runs f on a goroutine that Shutdown waits for.
func (c *core) goHelper(f func()) {
	c.helpers.Add(1)
	go func() {
		defer c.helpers.Done()
		f()
	}()
}
