package lifecycle

import "github.com/boxsup/boxsup/messages"

// The handlers that answer a request without a transition.

func ignore(m *Machine, _ Event) Phase { return m.phase }

func deferRequest(m *Machine, ev Event) Phase {
	m.deferred = append(m.deferred, ev)
	return m.phase
}

func replyStatus(m *Machine, ev Event) Phase {
	m.reply(waiterOf(ev), m.Status(nil))
	return m.phase
}

func replyAlreadyExists(m *Machine, ev Event) Phase {
	m.reply(waiterOf(ev), m.Status(messages.Errorf(messages.ErrAlreadyExists, "%q", m.id)))
	return m.phase
}

func replyNotFound(m *Machine, ev Event) Phase {
	why := "%q"
	if m.phase == Removing {
		why = "%q is being removed"
	}
	m.reply(waiterOf(ev), messages.BoxStatus{ID: m.id, Err: messages.Errorf(messages.ErrNotFound, why, m.id)})
	return m.phase
}

func replyBusy(m *Machine, ev Event) Phase {
	st := m.Status(nil)
	st.Err = messages.Errorf(messages.ErrBusy, "box %q is %s; retry when it is at rest", m.id, st.State)
	m.reply(waiterOf(ev), st)
	return m.phase
}

func replyNotRunning(m *Machine, ev Event) Phase {
	st := m.Status(nil)
	st.Err = messages.Errorf(messages.ErrNotRunning, "box %q is %s", m.id, st.State)
	m.reply(waiterOf(ev), st)
	return m.phase
}

func replyUnverified(m *Machine, ev Event) Phase {
	m.reply(waiterOf(ev), m.Status(m.unverifiedErr()))
	return m.phase
}

// unverifiedErr explains why nothing was done to an unknown box.
func (m *Machine) unverifiedErr() *messages.Error {
	return messages.Errorf(messages.ErrUnverified, "box %q: its process could not be verified (%s); nothing was signalled; it is verified again shortly",
		m.id, m.rec.Reason)
}

func joinStart(m *Machine, ev Event) Phase {
	m.startW = append(m.startW, waiterOf(ev))
	return m.phase
}

func joinStop(m *Machine, ev Event) Phase {
	m.stopW = append(m.stopW, waiterOf(ev))
	return m.phase
}

func joinRemove(m *Machine, ev Event) Phase {
	if w := waiterOf(ev); w != 0 {
		m.removeW = append(m.removeW, w)
	}
	return m.phase
}

func onSignal(m *Machine, ev Event) Phase {
	e := ev.(Signal)
	if m.proc == nil {
		return replyNotRunning(m, ev)
	}
	m.emit(SendSignal{Gen: m.rec.Generation, Sig: e.Sig, W: e.W, Status: m.Status(nil)})
	return m.phase
}

func onSpecDurable(m *Machine, ev Event) Phase {
	if err := ev.(SpecDurable).Err; err != nil {
		// The box runs; only a power loss could now lose its spec.
		m.logf("error", err, "making spec.json durable failed")
	}
	m.specDurable = true
	held := m.heldAcks
	m.heldAcks = nil
	for _, a := range held {
		m.announceUpTo(a)
	}
	return m.phase
}

func onPersisted(m *Machine, ev Event) Phase {
	m.onPersisted(ev.(Persisted))
	return m.phase
}

// Updates change the supervision settings in place: spec.json first (the
// restart policy and stop timeout live there), then the record; the caller
// hears once both are on disk. Updates are applied one at a time, in order.

func onUpdate(m *Machine, ev Event) Phase {
	u := ev.(Update)
	if m.reload {
		// The box's files could not be read: there is no spec to update,
		// nor a record to write over. Read them again soon.
		m.reply(u.W, m.Status(m.unverifiedErr()))
		m.emit(Arm{Timer: RetryTimer{Gen: m.rec.Generation}, Delay: 0})
		return m.phase
	}
	if !m.opts.Startable {
		// An update rewrites spec.json from the spec in memory: without a
		// usable one it would replace the damaged file (the evidence)
		// with an empty spec.
		m.reply(u.W, m.Status(messages.Errorf(messages.ErrBadSpec, "box %q has no usable spec.json to update", m.id)))
		return m.phase
	}
	if u.Set.Restart != nil && u.Set.Restart.Mode == messages.RestartOnUnhealthy && m.opts.Health == nil {
		m.reply(u.W, m.Status(messages.Errorf(messages.ErrBadSpec, "box %q: restart mode on-unhealthy needs a health check, and the box has none", m.id)))
		return m.phase
	}
	m.updates = append(m.updates, u)
	if len(m.updates) == 1 {
		m.writeNextSpec()
	}
	return m.phase
}

// writeNextSpec starts the spec.json write of the first pending update,
// its label changes resolved against the labels the box has now (the
// updates before it applied): concurrent single-label changes all land.
func (m *Machine) writeNextSpec() {
	u := &m.updates[0]
	u.Set = u.Set.resolve(m.rec.Labels)
	m.emit(WriteSpec{Set: u.Set})
}

func onSpecWritten(m *Machine, ev Event) Phase {
	if len(m.updates) == 0 {
		return m.phase
	}
	u := m.updates[0]
	m.updates = m.updates[1:]
	switch err := ev.(SpecWritten).Err; {
	case m.phase == Removing || m.phase == Gone:
		m.reply(u.W, messages.BoxStatus{ID: m.id, Err: messages.Errorf(messages.ErrNotFound, "%q is being removed", m.id)})
	case err != nil:
		// Nothing changed: the update is not acknowledged, nor applied.
		m.reply(u.W, m.Status(messages.Errorf(messages.ErrPersist, "box %q: writing spec.json: %w", m.id, err)))
	default:
		if u.Set.Restart != nil {
			m.opts.Restart = *u.Set.Restart
		}
		if u.Set.StopTimeout != nil {
			m.opts.StopTimeout = *u.Set.StopTimeout
		}
		if u.Set.Labels != nil {
			m.opts.Labels = u.Set.Labels
			m.rec.Labels = u.Set.Labels
		}
		m.settings++ // the root's List must show the new settings
		st := m.Status(nil)
		m.commit(func(durable bool, err error) { m.replyDurable([]Waiter{u.W}, st, durable, err) })
	}
	if len(m.updates) > 0 {
		m.writeNextSpec()
	}
	return m.phase
}
