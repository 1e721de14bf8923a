package lifecycle

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/boxsup/boxsup/messages"
)

// Loading a box and verifying its process: Loading → Adopting → Running, or
// the exit it had while nobody watched, or Unknown when it cannot be told.

func onLoaded(m *Machine, ev Event) Phase {
	e := ev.(Loaded)
	m.initial = true
	m.opts = e.Opts
	m.opts.Startable = e.SpecErr == nil
	if err := unreadable(e.RecErr, e.SpecErr); err != nil {
		// The files could not be read right now (EMFILE, ENOMEM, ...): a
		// transient error says nothing about the box. Nothing is decided,
		// nothing written over a record that is only unreadable: the box
		// is unknown until they are read again. Its process stays killable
		// through the box's cgroup.
		m.reload = true
		m.rec = messages.StateRecord{ID: m.id, Reason: "unverified: reading its files: " + err.Error()}
		m.opts.Detach = true // unsaid: a box outlives the supervisor
		if e.SpecErr == nil {
			m.opts.Detach = e.Opts.Detach
		}
		return m.becomeUnknown(err)
	}
	var specNote string
	if e.SpecErr != nil {
		// Without its spec the box is still the box, but it cannot be
		// started again: the note stays for as long as that is true.
		specNote = "spec.json unusable: " + e.SpecErr.Error()
	}
	if e.RecErr != nil {
		// state.json is missing or damaged: nothing in it can be trusted,
		// and nothing may be stopped on its word. Look for a running shim
		// of the box (in its cgroup, else by command line and working
		// directory) before calling it anything.
		m.rec = messages.StateRecord{ID: m.id, CreatedAt: m.env.Now().UTC(), State: messages.StateExited}
		if errors.Is(e.RecErr, fs.ErrNotExist) {
			m.loadNote = "no state record: state.json is missing"
		} else {
			m.loadNote = "state.json unusable: " + e.RecErr.Error()
			m.logf("warn", e.RecErr, "box state could not be read; looking for its shim")
		}
		if specNote != "" {
			m.loadNote += "; " + specNote
		}
		if e.SpecErr == nil {
			detach := e.Opts.Detach
			m.rec.Detached = &detach
			m.rec.Labels = e.Opts.Labels
		}
		m.opts.Detach = m.rec.IsDetached()
		return m.beginVerify(adoptBoot, 0)
	}
	m.rec = e.Rec
	m.rec.ID = m.id
	m.hist.seed(m.rec.RecentRestarts, m.rec.BackoffStep)
	if m.rec.Labels == nil {
		m.rec.Labels = e.Opts.Labels // a record from before labels were kept there
	}
	if e.SpecErr != nil {
		// Its record says whether it outlives the supervisor (unsaid: it
		// does).
		m.opts.Detach = m.rec.IsDetached()
		m.loadNote = specNote
		if m.rec.State.Live() {
			m.logf("warn", e.SpecErr, "box spec could not be read; adopting without it")
		}
	}
	switch m.rec.State {
	case messages.StateStarting, messages.StateRunning, messages.StateStopping, messages.StateUnknown:
		return m.beginVerify(adoptBoot, 0)
	case messages.StateRestarting:
		// The previous supervisor granted a restart and went away before
		// carrying it out. The spawn makes sure no process of the box is
		// left in its cgroup first.
		if !m.opts.Startable {
			m.rec.State = messages.StateFailed
			m.rec.Reason = "a restart was pending, but spec.json is unusable"
			return Failed
		}
		m.emit(Arm{Timer: RestartTimer{Gen: m.rec.Generation}, Delay: 0})
		return Restarting
	case messages.StateCreated:
		return Created
	case messages.StateExited:
		return Exited
	case messages.StateFailed:
		return Failed
	}
	m.loadNote = "unknown state " + string(m.rec.State) + " in state.json"
	m.rec.State = messages.StateExited
	return m.beginVerify(adoptBoot, 0)
}

// beginVerify verifies, under a new generation, the recorded process (or,
// with no identity recorded, looks for a shim of the box; or, with pid set,
// checks that handed-over process).
func (m *Machine) beginVerify(kind adoptKind, pid int) Phase {
	m.adopting = kind
	m.rec.Generation++
	v := Verify{Gen: m.rec.Generation, PID: pid, StartedAt: m.rec.StartedAt}
	if pid == 0 {
		v.Identity = m.rec.Identity
		v.Cgroup = m.killableCgroup()
		v.Token = m.rec.SpawnToken
	}
	m.emit(v)
	return Adopting
}

func onAdoptRequest(m *Machine, ev Event) Phase {
	e := ev.(Adopt)
	if e.PID <= 1 {
		m.reply(e.W, m.Status(messages.Errorf(messages.ErrIdentityMismatch, "pid %d cannot be a shim", e.PID)))
		return m.phase
	}
	m.handedW = e.W
	m.prevPhase = m.phase
	return m.beginVerify(adoptHanded, e.PID)
}

func onRetryTimer(m *Machine, ev Event) Phase {
	if ev.(RetryTimer).Gen != m.rec.Generation {
		return m.phase
	}
	if m.reload {
		m.reload = false
		m.emit(Load{})
		return Loading
	}
	return m.beginVerify(adoptRetry, 0)
}

// unreadable returns the first of errs that says a file could not be read
// right now, rather than that it is missing (fs.ErrNotExist) or damaged (a
// typed *messages.Error: corrupt, unsafe): only those two are facts to act
// on.
func unreadable(errs ...error) error {
	for _, err := range errs {
		var typed *messages.Error
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.As(err, &typed) {
			return err
		}
	}
	return nil
}

func onStaleAdopted(m *Machine, ev Event) Phase {
	if e := ev.(Adopted); e.Outcome == Verified {
		m.emit(Release{Gen: e.Gen}) // close the handle; the process is left alone
	}
	return m.phase
}

func onAdopted(m *Machine, ev Event) Phase {
	e := ev.(Adopted)
	if e.Gen != m.rec.Generation {
		return onStaleAdopted(m, ev)
	}
	if m.adopting == adoptHanded {
		return m.onHandedAdopted(e)
	}
	switch e.Outcome {
	case Verified:
		return m.adoptVerified(e.Proc)
	case Unverified:
		m.rec.Reason = "unverified: " + errText(e.Err)
		return m.becomeUnknown(e.Err)
	}
	// Gone, or the recorded PID now names another process: either way the
	// box's shim ended while nobody watched. That other process is never
	// signalled.
	m.retries = 0
	exit := e.Exit
	switch {
	case e.Outcome == Mismatch:
		// Said without the other process's details (its command line is
		// not the box owner's to read in a status).
		exit = m.lostExit(fmt.Sprintf("pid %d is not this box's shim (the pid was recycled, or state.json altered)", m.rec.Identity.PID))
	case !exit.Known() && m.rec.Identity.Zero() && m.rec.State == messages.StateStarting:
		exit = m.lostExit("start interrupted before its shim ran")
	case !exit.Known() && m.rec.Identity.Zero():
		exit = m.lostExit("no process found")
	case !exit.Known():
		exit = m.lostExit("process gone, no exit record")
	}
	m.logf("info", nil, "recorded shim is not running: %s", exit.Reason)
	m.emit(Release{Gen: m.rec.Generation, Cgroup: m.rec.Cgroup})
	if m.rec.State == messages.StateStopping || m.rec.State.AtRest() || !m.opts.Startable {
		// A stop was under way (or nothing was meant to run): the box
		// has stopped.
		m.rec.LastExit = &exit
		m.rec.Identity = messages.Identity{}
		wasRest := m.rec.State.AtRest()
		if !wasRest {
			m.rec.State = messages.StateExited
			m.rec.Reason = exit.Reason
		}
		hdr := m.header()
		m.commit(func(bool, error) {
			m.emit(Publish{Event: messages.BoxExited{EventHeader: hdr, Exit: exit, Requested: !wasRest}})
		})
		if m.rec.State == messages.StateFailed {
			return Failed
		}
		if m.rec.State == messages.StateCreated {
			return Created
		}
		return Exited
	}
	uptime := m.env.Now().Sub(m.rec.StartedAt)
	return m.judgeExit(exit, uptime, m.rec.Identity.PID)
}

// adoptVerified takes over the box's verified shim.
func (m *Machine) adoptVerified(p Proc) Phase {
	m.retries = 0
	m.proc = &p
	m.spawnedAt = m.rec.StartedAt
	m.emit(WatchExit{Gen: m.rec.Generation})
	wasStopping := m.rec.State == messages.StateStopping
	changed := m.rec.Identity != p.Identity || m.loadNote != "" ||
		(m.rec.State != messages.StateRunning && !wasStopping)
	m.rec.Identity = p.Identity
	if p.Cgroup != "" {
		m.rec.Cgroup = p.Cgroup
	}
	if m.rec.State != messages.StateRunning && !wasStopping {
		// A shim alive after its ready pipe died with the supervisor is
		// taken as ready (a recovered damaged record too).
		m.rec.State = messages.StateRunning
		m.rec.Reason = ""
		if m.loadNote != "" {
			// The damage stays explained: in the status until the box
			// is started again, and in the rewritten record, which the
			// next supervisor (or command) loads without the damage.
			m.rec.Reason = "adopted its verified shim; " + m.loadNote
		}
	}
	m.emit(Log{Level: "info", Msg: "adopted running shim", Fields: map[string]any{"pid": p.Identity.PID}})
	hdr := m.header()
	adopted := Publish{Event: messages.BoxAdopted{EventHeader: hdr, PID: p.Identity.PID}}
	if wasStopping {
		// The previous supervisor was stopping it: carry on.
		m.commit(func(bool, error) { m.emit(adopted) })
		return m.beginStop(m.stopTimeout(0, 0))
	}
	if changed {
		m.commit(func(bool, error) { m.emit(adopted) })
	} else {
		// Only the in-memory generation changed: nothing new to write,
		// which keeps adopting many boxes free of writes.
		m.emit(adopted)
	}
	return Running
}

// onHandedAdopted settles an Adopt request.
func (m *Machine) onHandedAdopted(e Adopted) Phase {
	w := m.handedW
	m.handedW = 0
	var failure *messages.Error
	switch e.Outcome {
	case Verified:
		m.proc = &e.Proc
		m.spawnedAt = m.env.Now()
		m.rec.State = messages.StateRunning
		m.rec.Identity = e.Proc.Identity
		m.rec.Cgroup = e.Proc.Cgroup
		m.rec.SpawnToken = ""
		m.rec.Reason = ""
		m.rec.StartedAt = m.env.Now().UTC()
		m.emit(WatchExit{Gen: m.rec.Generation})
		hdr, st := m.header(), m.Status(nil)
		m.commit(func(durable bool, err error) {
			m.replyDurable([]Waiter{w}, st, durable, err)
			m.emit(Publish{Event: messages.BoxAdopted{EventHeader: hdr, PID: e.Proc.Identity.PID}})
		})
		return Running
	case Vanished:
		failure = messages.Errorf(messages.ErrNotFound, "box %q: no such process: %s", m.id, errText(e.Err))
	case Mismatch:
		failure = messages.Errorf(messages.ErrIdentityMismatch, "box %q: %s", m.id, errText(e.Err))
	default:
		failure = messages.Errorf(messages.ErrUnverified, "box %q: %s", m.id, errText(e.Err))
	}
	m.reply(w, m.Status(failure))
	return m.prevPhase
}

// becomeUnknown parks a box whose process could not be verified, and arms
// the next verification.
func (m *Machine) becomeUnknown(err error) Phase {
	m.retries++
	delay := retryDelay(m.retries)
	m.logf("warn", err, "box process could not be verified; retrying in %v", delay)
	m.emit(Arm{Timer: RetryTimer{Gen: m.rec.Generation}, Delay: delay})
	return Unknown
}

func errText(err error) string {
	if err == nil {
		return "unknown reason"
	}
	return err.Error()
}
