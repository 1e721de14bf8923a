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
