package lifecycle

import (
	"errors"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Creating and starting a box: Create → Creating → Intent → Spawning →
// AwaitReady → Running.

func onCreate(m *Machine, ev Event) Phase {
	e := ev.(Create)
	now := m.env.Now().UTC()
	m.fresh = true
	m.opts = e.Opts
	m.opts.Startable = true
	detach := e.Opts.Detach
	m.rec = messages.StateRecord{ID: m.id, State: messages.StateCreated, Detached: &detach, Labels: e.Opts.Labels, CreatedAt: now, UpdatedAt: now}
	m.startW = append(m.startW, e.W)
	m.specDurable = false // Prepared, then SpecDurable, report the two halves of CreateBox
	m.emit(CreateBox{})
	return Creating
}

func onCreated(m *Machine, ev Event) Phase {
	if err := ev.(Prepared).Err; err != nil {
		m.logf("warn", err, "creating the box failed")
		st := m.Status(messages.AsError(err))
		var replies []Reply
		for _, w := range append(append(takeWaiters(&m.startW), takeWaiters(&m.stopW)...), takeWaiters(&m.removeW)...) {
			replies = append(replies, Reply{W: w, Status: st})
		}
		for _, u := range m.updates {
			replies = append(replies, Reply{W: u.W, Status: messages.BoxStatus{ID: m.id, Err: messages.Errorf(messages.ErrNotFound, "%q", m.id)}})
		}
		m.updates = nil
		// The requests that waited for the creation find no box.
		for _, d := range m.deferred {
			if w := waiterOf(d); w != 0 && d.Kind() != KCancelStart {
				replies = append(replies, Reply{W: w, Status: messages.BoxStatus{ID: m.id, Err: messages.Errorf(messages.ErrNotFound, "%q", m.id)}})
			}
		}
		m.deferred = nil
		m.emit(End{Replies: replies})
		return Gone
	}
	return m.beginStart()
}

func onStartAtRest(m *Machine, ev Event) Phase {
	if m.removalLeft != "" {
		// Its directory is hidden for deletion: the start's record could
		// never be written, and the start would wait for it until its
		// caller gave up.
		m.reply(waiterOf(ev), m.Status(messages.Errorf(messages.ErrBusy,
			"box %q is being removed and cannot start (%s); remove it again", m.id, m.removalLeft)))
		return m.phase
	}
	if !m.opts.Startable {
		m.reply(waiterOf(ev), m.Status(messages.Errorf(messages.ErrBadSpec, "box %q has no usable spec.json", m.id)))
		return m.phase
	}
	m.hist.reset() // an operator's start is a fresh start, not one more crash in the window
	m.startW = append(m.startW, waiterOf(ev))
	return m.beginStart()
}

func onStartRestarting(m *Machine, ev Event) Phase {
	if m.shortages > 0 {
		// The restart waits out a host shortage (retryRestartLater): a start
		// now would most likely fail the same way, and a failed start ends
		// the box for good where the policy keeps retrying.
		m.reply(ev.(Start).W, m.Status(messages.Errorf(messages.ErrBusy,
			"box %s: its restart waits for the host to have room again, and happens by itself (%s)", m.id, m.rec.Reason)))
		return Restarting
	}
	m.emit(Disarm{Timer: RestartTimer{}})
	return onStartAtRest(m, ev)
}

func onRestartTimer(m *Machine, ev Event) Phase {
	if ev.(RestartTimer).Gen != m.rec.Generation {
		return m.phase
	}
	return m.beginStart()
}

// beginStart records a new generation as starting, with the cgroup and the
// spawn token its shim will have, and spawns only once that is on disk: a
// supervisor that dies mid-spawn leaves the place to look for the shim.
func (m *Machine) beginStart() Phase {
	m.rec.Generation++
	m.rec.State = messages.StateStarting
	m.rec.Identity = messages.Identity{}
	m.rec.Cgroup = m.env.GenCgroup(m.rec.Generation)
	m.rec.SpawnToken = m.env.NewToken()
	m.rec.Reason = ""
	m.rec.Killed = false
	m.rec.StartedAt = m.env.Now().UTC()
	m.loadNote = ""
	m.pendingExit = nil
	m.failErr = nil
	m.stopCause = stopRequested
	m.healthSince = time.Time{}
	m.granted = nil
	m.intentSeq = m.commit(nil)
	return Intent
}

func onPersistedIntent(m *Machine, ev Event) Phase {
	m.onPersisted(ev.(Persisted))
	if m.acked < m.intentSeq {
		return Intent // not on disk yet: the writer retries and reports again
	}
	m.emit(Spawn{Gen: m.rec.Generation, Cgroup: m.rec.Cgroup, Token: m.rec.SpawnToken, RestartInPlace: m.offersRestartInPlace()})
	return Spawning
}

func onSpawned(m *Machine, ev Event) Phase {
	e := ev.(Spawned)
	if e.Gen != m.rec.Generation {
		return m.phase
	}
	if e.Err != nil {
		return m.spawnFailed(e.Err)
	}
	m.shortages = 0
	m.proc = &e.Proc
	m.spawnedAt = m.env.Now()
	m.rec.Identity = e.Proc.Identity
	m.rec.Cgroup = e.Proc.Cgroup
	pid := e.Proc.Identity.PID
	if e.Adopted {
		// A shim of this box was still running in its cgroup (a start that
		// a dead supervisor interrupted): it is adopted, never duplicated.
		m.emit(WatchExit{Gen: e.Gen})
		m.rec.State = messages.StateRunning
		hdr := m.header()
		m.logf("info", nil, "adopted a running shim of the box (pid %d) instead of starting another", pid)
		st := m.Status(nil)
		ws := takeWaiters(&m.startW)
		m.commit(func(durable bool, err error) {
			m.replyDurable(ws, st, durable, err)
			m.emit(Publish{Event: messages.BoxAdopted{EventHeader: hdr, PID: pid}})
		})
		return Running
	}
	m.emit(Watch{Gen: e.Gen})
	hdr := m.header()
	m.commit(func(bool, error) {
		m.emit(Publish{Event: messages.BoxStarted{EventHeader: hdr, PID: pid}})
	})
	return AwaitReady
}

// spawnFailed handles a spawn that produced no process of this generation.
func (m *Machine) spawnFailed(err error) Phase {
	if errors.Is(err, messages.ErrUnverified) {
		// A process of the box is in its cgroup and could not be checked:
		// starting another could run the box twice.
		m.rec.Reason = err.Error()
		m.replyAll(&m.startW, m.Status(messages.AsError(err)))
		return m.becomeUnknown(err)
	}
	if len(m.startW) == 0 && len(m.cancelled) == 0 {
		if isHostShortage(err) {
			return m.retryRestartLater(err)
		}
		// A restart the policy granted: a failed spawn is a failed run,
		// judged like a crash (and counted against the restart limit): the
		// box's own failure to start (exec failed) ends it within the limit.
		exit := messages.ExitRecord{ExitCode: -1, Reason: "start failed: " + err.Error(), FinishedAt: m.env.Now().UTC(), Source: messages.SourceNone}
		return m.judgeExit(exit, 0, 0)
	}
	return m.failStart(messages.AsError(err), nil)
}

func onReady(m *Machine, ev Event) Phase {
	e := ev.(Ready)
	if e.Gen != m.rec.Generation {
		return m.phase
	}
	if e.Err == nil {
		m.healthSince = m.env.Now()
		if m.readyWhenHealthy() {
			if m.pendingExit != nil {
				exit := *m.pendingExit
				m.pendingExit = nil
				return m.exitAwaitingHealthy(exit)
			}
			return m.awaitHealthy()
		}
		next := m.becomeRunning()
		if m.pendingExit != nil {
			// The shim wrote its ready byte and then exited: it started,
			// and its exit is a normal exit, judged by the policy.
			exit := *m.pendingExit
			return m.onExitOfRunning(exit)
		}
		return next
	}
	failure := messages.AsError(e.Err)
	exit := e.Exit
	if exit == nil {
		exit = m.pendingExit
	}
	if exit != nil {
		pid := m.pid()
		m.release()
		if len(m.startW) == 0 && len(m.cancelled) == 0 {
			// A restart the policy granted, whose guest could not be run
			// (the shim reports an exec failure through the ready path): a
			// failed run, judged like a crash within the restart limit, as
			// a spawn that failed is (spawnFailed).
			return m.judgeExit(*exit, 0, pid)
		}
		return m.failStart(failure, exit)
	}
	// WaitReady killed the tree but did not see it end: answer now, and
	// record the failure with its exit once the shim is gone.
	m.replyAll(&m.startW, m.Status(failure))
	m.failErr = failure
	return m.beginKill(causeStartFailed)
}

// becomeRunning records a started box as running and answers its starts
// once that is on disk.
func (m *Machine) becomeRunning() Phase {
	m.rec.State = messages.StateRunning
	took := m.env.Now().Sub(m.spawnedAt)
	hdr, pid, st := m.header(), m.pid(), m.Status(nil)
	ws := takeWaiters(&m.startW)
	m.commit(func(durable bool, err error) {
		m.replyDurable(ws, st, durable, err)
		m.emit(Publish{Event: messages.BoxReady{EventHeader: hdr, PID: pid, Took: took}})
	})
	return Running
}

func onExitBeforeReady(m *Machine, ev Event) Phase {
	e := ev.(ProcExited)
	if e.Gen == m.rec.Generation {
		exit := e.Exit
		m.pendingExit = &exit // the ready result decides what it means
	}
	return m.phase
}

// failStart records a start that did not produce a ready box.
func (m *Machine) failStart(failure *messages.Error, exit *messages.ExitRecord) Phase {
	m.rec.State = messages.StateFailed
	m.rec.Reason = failure.Msg
	m.rec.Identity = messages.Identity{}
	if exit != nil {
		m.rec.LastExit = exit
	}
	level := "warn"
	if len(m.startW) > 0 {
		level = "info" // the caller gets the error; the log need not repeat it loudly
	}
	m.logf(level, nil, "box failed to start: %s", failure.Msg)
	hdr, st := m.header(), m.Status(nil)
	starts, stops := takeWaiters(&m.startW), takeWaiters(&m.stopW)
	failed := st
	failed.Err = failure
	m.commit(func(durable bool, err error) {
		for _, w := range starts {
			m.reply(w, failed)
		}
		m.replyDurable(stops, st, durable, err)
		if exit != nil {
			m.emit(Publish{Event: messages.BoxExited{EventHeader: hdr, Exit: *exit}})
		}
		m.emit(Publish{Event: messages.BoxFailed{EventHeader: hdr, Reason: failure.Msg}})
	})
	return Failed
}

func onLateExit(m *Machine, ev Event) Phase {
	e := ev.(ProcExited)
	if e.Gen != m.rec.Generation || m.proc == nil {
		return m.phase
	}
	pid := m.pid()
	m.release()
	exit := e.Exit
	m.rec.LastExit = &exit
	hdr := m.header()
	m.commit(func(bool, error) {
		m.emit(Publish{Event: messages.BoxExited{EventHeader: hdr, PID: pid, Exit: exit}})
	})
	return m.phase
}

// Cancelling a start whose context ended (os/exec's CommandContext): the box
// is killed, a fresh box removed, and the caller answered once that is done.

func onCancelIntent(m *Machine, ev Event) Phase {
	w := waiterOf(ev)
	if !removeWaiter(&m.startW, w) {
		return m.phase
	}
	if len(m.startW) > 0 {
		// Others still want it started: only this caller stops waiting.
		m.reply(w, m.cancelledStatus())
		return m.phase
	}
	m.cancelled = append(m.cancelled, w)
	if m.fresh {
		m.parked = append(m.parked, Remove{Force: true, cancelled: true})
	}
	return m.stopBeforeSpawn("start cancelled before it began")
}

func onCancelAwaiting(m *Machine, ev Event) Phase {
	w := waiterOf(ev)
	if !removeWaiter(&m.startW, w) {
		return m.phase
	}
	if len(m.startW) > 0 {
		m.reply(w, m.cancelledStatus())
		return m.phase
	}
	m.cancelled = append(m.cancelled, w)
	if m.fresh {
		m.parked = append(m.parked, Remove{Force: true, cancelled: true})
	}
	return m.beginKill(causeCancel)
}

// cancelledStatus is what a cancelled start's caller hears (the facade
// returns the context's error instead).
func (m *Machine) cancelledStatus() messages.BoxStatus {
	return m.Status(messages.Errorf(messages.ErrStartFailed, "box %q: the start was cancelled (its context ended) and undone", m.id))
}

// sigterm is SIGTERM as the machine's effects carry it.
const sigterm = int(syscall.SIGTERM)
