package lifecycle

import (
	"fmt"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Stopping, killing, and the exits of a box: Stop → Stopping → (timeout)
// Killing → Exited; an exit nobody asked for is judged by the restart policy.

// stopCause says who wants a Stopping or Killing box stopped.
type stopCause uint8

const (
	// stopRequested: a caller (Stop, Kill, Remove, a shutdown): the exit
	// ends the box's run.
	stopRequested stopCause = iota
	// stopUnhealthy: its health check (restart policy on-unhealthy, or a
	// granted restart that never became healthy): the exit is judged by
	// the restart policy as a failure, unless a caller joined the stop.
	stopUnhealthy
)

func onStop(m *Machine, ev Event) Phase {
	e := ev.(Stop)
	m.stopW = append(m.stopW, e.W)
	if e.Now {
		return m.beginKill(causeRequested)
	}
	return m.beginStop(m.stopTimeout(e.Timeout, e.Cap))
}

func onStopAgain(m *Machine, ev Event) Phase {
	e := ev.(Stop)
	m.stopW = append(m.stopW, e.W)
	if e.Now {
		return m.beginKill(causeRequested)
	}
	if dl := m.env.Now().Add(m.stopTimeout(e.Timeout, e.Cap)); dl.Before(m.stopDeadline) {
		// The later request is in more of a hurry: its deadline wins.
		m.stopDeadline = dl
		m.emit(Arm{Timer: KillTimer{Gen: m.rec.Generation}, Delay: dl.Sub(m.env.Now())})
	}
	return m.phase
}

func onKill(m *Machine, ev Event) Phase {
	m.stopW = append(m.stopW, waiterOf(ev))
	return m.beginKill(causeRequested)
}

// beginStop sends SIGTERM to the shim and arms the kill that follows if it
// has not exited when timeout expires. The exit disarms it.
func (m *Machine) beginStop(timeout time.Duration) Phase {
	m.rec.State = messages.StateStopping
	m.commit(nil)
	m.stopDeadline = m.env.Now().Add(timeout)
	m.emit(
		SendSignal{Gen: m.rec.Generation, Sig: sigterm},
		Arm{Timer: KillTimer{Gen: m.rec.Generation}, Delay: timeout},
	)
	m.replyAll(&m.startW, m.Status(m.stoppedBeforeReady()))
	return m.exitIfPending(Stopping)
}

// exitIfPending settles a stop whose shim already exited (its exit came
// before the ready result): the stop is done.
func (m *Machine) exitIfPending(next Phase) Phase {
	if m.pendingExit == nil {
		return next
	}
	exit := *m.pendingExit
	m.pendingExit = nil
	m.phase = next // the exit is recorded as the end of this stop
	return m.stopExit(exit)
}

// beginKill SIGKILLs the box's tree: through the verified process's handle,
// or, for a box whose process is unverified, through its cgroup.
func (m *Machine) beginKill(cause killCause) Phase {
	if m.rec.State != messages.StateStopping && cause != causeStartFailed {
		m.rec.State = messages.StateStopping
		m.commit(nil)
	}
	m.emit(Disarm{Timer: KillTimer{}})
	m.killCause = cause
	m.killNow()
	if cause != causeCancel {
		m.replyAll(&m.startW, m.Status(m.stoppedBeforeReady()))
	}
	return m.exitIfPending(Killing)
}

// killNow emits the kill of the current generation's tree.
func (m *Machine) killNow() {
	if m.proc != nil {
		m.emit(KillTree{Gen: m.rec.Generation})
		return
	}
	m.emit(KillCgroup{Gen: m.rec.Generation, Cgroup: m.killableCgroup()})
}

func (m *Machine) stoppedBeforeReady() *messages.Error {
	return messages.Errorf(messages.ErrStartFailed, "box %q was stopped before it became ready", m.id)
}

func onKillTimer(m *Machine, ev Event) Phase {
	if ev.(KillTimer).Gen != m.rec.Generation {
		return m.phase // armed for an older generation, cancelled too late
	}
	m.rec.Killed = true
	m.logf("info", nil, "stop timeout expired; killing the box")
	return m.beginKill(causeTimeout)
}

func onKillDone(m *Machine, ev Event) Phase {
	e := ev.(KillDone)
	if e.Gen != m.rec.Generation || e.Err == nil {
		return m.phase
	}
	m.logf("warn", e.Err, "killing the box's process tree failed; trying again")
	m.emit(Arm{Timer: KillRetryTimer{Gen: e.Gen}, Delay: 200 * time.Millisecond})
	return m.phase
}

func onKillRetryTimer(m *Machine, ev Event) Phase {
	if ev.(KillRetryTimer).Gen == m.rec.Generation {
		m.killNow()
	}
	return m.phase
}

func onStopBeforeSpawn(m *Machine, ev Event) Phase {
	m.stopW = append(m.stopW, waiterOf(ev))
	return m.stopBeforeSpawn("stopped before it started")
}

// stopBeforeSpawn ends a start whose intent is not yet spawned: there is no
// process, and the pending intent write will not spawn (the phase moved on).
func (m *Machine) stopBeforeSpawn(reason string) Phase {
	m.rec.State = messages.StateExited
	m.rec.Reason = reason
	m.rec.SpawnToken = ""
	m.emit(Release{Gen: m.rec.Generation, Cgroup: m.rec.Cgroup})
	st := m.Status(nil)
	m.replyAll(&m.startW, m.Status(messages.Errorf(messages.ErrStartFailed, "box %q: %s", m.id, reason)))
	stops := takeWaiters(&m.stopW)
	cancelled := m.takeCancelledUnlessRemoving()
	m.commit(func(durable bool, err error) {
		m.replyDurable(stops, st, durable, err)
		for _, w := range cancelled {
			m.reply(w, m.cancelledStatus())
		}
	})
	return Exited
}

// takeCancelledUnlessRemoving returns the cancelled starts to answer now,
// unless a parked removal will answer them when the box is gone.
func (m *Machine) takeCancelledUnlessRemoving() []Waiter {
	for _, p := range m.parked {
		if r, ok := p.(Remove); ok && r.cancelled {
			return nil
		}
	}
	return takeWaiters(&m.cancelled)
}

func onStopRestarting(m *Machine, ev Event) Phase {
	m.emit(Disarm{Timer: RestartTimer{}})
	m.stopW = append(m.stopW, waiterOf(ev))
	return m.stopBeforeSpawnRestart()
}

// stopBeforeSpawnRestart ends a box that was waiting for its restart.
func (m *Machine) stopBeforeSpawnRestart() Phase {
	m.rec.State = messages.StateExited
	m.rec.Reason = "stopped while waiting to restart"
	st := m.Status(nil)
	stops := takeWaiters(&m.stopW)
	m.commit(func(durable bool, err error) { m.replyDurable(stops, st, durable, err) })
	return Exited
}

func onStopUnknown(m *Machine, ev Event) Phase {
	if m.killableCgroup() == "" || m.reload {
		// No cgroup: the only handle on the tree is a process group, and
		// its leader is not verified. Or the box's files could not be
		// read: nothing is known of it, and a kill would be recorded over
		// a record that is only unreadable. Signal nothing; verify (or
		// read) again soon.
		m.reply(waiterOf(ev), m.Status(m.unverifiedErr()))
		m.emit(Arm{Timer: RetryTimer{Gen: m.rec.Generation}, Delay: 0})
		return m.phase
	}
	m.emit(Disarm{Timer: RetryTimer{}})
	m.stopW = append(m.stopW, waiterOf(ev))
	m.logf("warn", nil, "killing the cgroup of a box whose process could not be verified")
	return m.beginKill(causeRequested)
}

func onRunningExit(m *Machine, ev Event) Phase {
	e := ev.(ProcExited)
	if e.Gen != m.rec.Generation {
		return m.phase
	}
	return m.onExitOfRunning(e.Exit)
}

// onExitOfRunning handles the exit of a running box that nobody asked for.
func (m *Machine) onExitOfRunning(exit messages.ExitRecord) Phase {
	pid := m.pid()
	uptime := m.env.Now().Sub(m.spawnedAt)
	m.release()
	return m.judgeExit(exit, uptime, pid)
}

// judgeExit applies the restart policy to an exit that no Stop, Kill or
// Remove caused.
func (m *Machine) judgeExit(exit messages.ExitRecord, uptime time.Duration, pid int) Phase {
	return m.judge(exit, uptime, pid, false)
}

// judge is judgeExit; unhealthy marks the exit of a stop the box's health
// check caused, which any policy but "no" restarts, whatever the exit.
func (m *Machine) judge(exit messages.ExitRecord, uptime time.Duration, pid int, unhealthy bool) Phase {
	m.rec.LastExit = &exit
	m.rec.Identity = messages.Identity{}
	policy := m.opts.Restart.WithDefaults()
	if unhealthy && policy.Mode != messages.RestartNo {
		policy.Mode = messages.RestartAlways
	}
	if !m.opts.Startable {
		// spec.json is unusable: there is nothing to restart from.
		policy.Mode = messages.RestartNo
	}
	var d decision
	if g := m.granted; g != nil && !unhealthy {
		// The shim asked and a restart in place was granted, but could not
		// happen: this is the same exit, judged once (the history holds it
		// already).
		d = *g
	} else {
		d = m.hist.decide(policy, exit, uptime, m.env.Now(), m.env.Jitter)
	}
	m.granted = nil
	switch {
	case d.restart:
		m.rec.State = messages.StateRestarting
		m.rec.Restarts++
		m.rec.Reason = fmt.Sprintf("restarting after %s", exit)
		hdr := m.header()
		exited := messages.BoxExited{EventHeader: hdr, PID: pid, Exit: exit}
		m.commit(func(bool, error) {
			m.emit(Publish{Event: exited}, Publish{Event: messages.BoxRestarting{EventHeader: hdr, Attempt: d.attempt, Delay: d.delay}})
		})
		m.logf("info", nil, "box exited (%s); restart #%d in %v", exit, d.attempt, d.delay)
		m.emit(Arm{Timer: RestartTimer{Gen: m.rec.Generation}, Delay: d.delay})
		return Restarting
	case d.exceeded:
		m.rec.State = messages.StateFailed
		m.rec.Reason = fmt.Sprintf("restart limit exceeded (%d restarts within %s)", d.attempt, policy.Window)
		reason := m.rec.Reason
		hdr := m.header()
		exited := messages.BoxExited{EventHeader: hdr, PID: pid, Exit: exit}
		m.logf("warn", nil, "box failed: %s", reason)
		m.commit(func(bool, error) {
			m.emit(Publish{Event: exited}, Publish{Event: messages.BoxFailed{EventHeader: hdr, Reason: reason}})
		})
		return Failed
	}
	m.rec.State = messages.StateExited
	m.rec.Reason = exit.Reason
	exited := messages.BoxExited{EventHeader: m.header(), PID: pid, Exit: exit}
	m.commit(func(bool, error) { m.emit(Publish{Event: exited}) })
	return Exited
}

func onReadyWhileStopping(m *Machine, ev Event) Phase {
	e := ev.(Ready)
	if e.Gen != m.rec.Generation || e.Err == nil || e.Exit == nil {
		return m.phase // the start was already answered when the stop began
	}
	return m.stopExit(*e.Exit)
}

func onStopExit(m *Machine, ev Event) Phase {
	e := ev.(ProcExited)
	if e.Gen != m.rec.Generation {
		return m.phase
	}
	return m.stopExit(e.Exit)
}

// stopExit records the end of a box that was being stopped or killed.
func (m *Machine) stopExit(exit messages.ExitRecord) Phase {
	m.emit(Disarm{Timer: KillTimer{}}, Disarm{Timer: KillRetryTimer{}})
	pid, uptime := m.pid(), m.env.Now().Sub(m.spawnedAt)
	m.release()
	if m.phase == Killing && !exit.Known() {
		// An adopted shim killed with SIGKILL leaves no exit record, but
		// this supervisor sent the signal.
		exit.ExitCode, exit.Signal, exit.Reason = 128+9, "SIGKILL", "killed"
	}
	if m.phase == Killing && m.killCause == causeTimeout {
		exit.Reason = "killed after stop timeout"
	}
	if m.phase == Killing && m.killCause == causeStartFailed {
		return m.failStart(m.failErr, &exit)
	}
	if m.stopCause == stopUnhealthy && len(m.stopW) == 0 && len(m.parked) == 0 {
		// Nobody asked for this stop: the box goes the way of a crash.
		m.stopCause = stopRequested
		exit.Reason = "stopped as unhealthy: " + exit.Reason
		return m.judge(exit, uptime, pid, true)
	}
	m.stopCause = stopRequested
	m.rec.LastExit = &exit
	m.rec.Identity = messages.Identity{}
	m.rec.State = messages.StateExited
	m.rec.Reason = "stopped"
	if m.phase == Killing && m.killCause == causeCancel {
		m.rec.Reason = "start cancelled"
	}
	hdr, st := m.header(), m.Status(nil)
	stops := takeWaiters(&m.stopW)
	cancelled := m.takeCancelledUnlessRemoving()
	m.commit(func(durable bool, err error) {
		m.replyDurable(stops, st, durable, err)
		for _, w := range cancelled {
			m.reply(w, m.cancelledStatus())
		}
		m.emit(Publish{Event: messages.BoxExited{EventHeader: hdr, PID: pid, Exit: exit, Requested: true}})
	})
	return Exited
}
