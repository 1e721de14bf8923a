package lifecycle

import (
	"errors"

	"github.com/boxsup/boxsup/messages"
)

// Removing a box: only at rest; Force stops a live box first (the Remove is
// parked and replayed once the box is at rest).

func onRemoveAtRest(m *Machine, ev Event) Phase {
	e := ev.(Remove)
	if e.cancelled {
		// A cancelled start's removal: its callers are in m.cancelled.
	} else {
		m.removeW = append(m.removeW, e.W)
	}
	m.prevPhase = m.phase
	// Not while a state.json write of the box is in flight.
	m.afterCommits(func() { m.emit(RemoveDir{}) })
	return Removing
}

func onRemoveIntent(m *Machine, ev Event) Phase {
	e := ev.(Remove)
	if !e.Force {
		return replyBusy(m, ev)
	}
	m.parked = append(m.parked, e)
	return m.stopBeforeSpawn("removed before it started")
}

func onRemoveLive(m *Machine, ev Event) Phase {
	e := ev.(Remove)
	if !e.Force {
		st := m.Status(nil)
		st.Err = messages.Errorf(messages.ErrBusy, "box %q is %s; stop it first or force", m.id, st.State)
		m.reply(e.W, st)
		return m.phase
	}
	m.parked = append(m.parked, e)
	return m.beginStop(m.stopTimeout(0, 0))
}

func onRemoveStopping(m *Machine, ev Event) Phase {
	e := ev.(Remove)
	if !e.Force {
		return replyBusy(m, ev)
	}
	m.parked = append(m.parked, e)
	return m.phase
}

func onRemoveRestarting(m *Machine, ev Event) Phase {
	m.emit(Disarm{Timer: RestartTimer{}})
	m.parked = append(m.parked, ev)
	return m.stopBeforeSpawnRestart()
}

func onRemoveUnknown(m *Machine, ev Event) Phase {
	e := ev.(Remove)
	if !e.Force {
		return replyBusy(m, ev)
	}
	if m.killableCgroup() == "" || m.reload {
		// rm -f never deletes the files of a process it could not stop
		// (nor of a box whose files it could not read).
		m.reply(e.W, m.Status(m.unverifiedErr()))
		m.emit(Arm{Timer: RetryTimer{Gen: m.rec.Generation}, Delay: 0})
		return m.phase
	}
	m.parked = append(m.parked, e)
	m.emit(Disarm{Timer: RetryTimer{}})
	m.logf("warn", nil, "killing the cgroup of a box whose process could not be verified, to remove it")
	return m.beginKill(causeRequested)
}

func onRemoved(m *Machine, ev Event) Phase {
	err := ev.(Removed).Err
	if err != nil && !errors.Is(err, messages.ErrNotFound) { // not found: already gone
		m.logf("warn", err, "removing the box directory failed")
		if ev.(Removed).Hidden {
			m.removalLeft = err.Error()
		}
		m.replyAll(&m.removeW, m.Status(messages.AsError(err)))
		m.replyAll(&m.cancelled, m.cancelledStatus()) // undone, though its directory is left
		return m.prevPhase
	}
	st := m.Status(nil)
	var replies []Reply
	add := func(ws []Waiter, st messages.BoxStatus) {
		for _, w := range ws {
			replies = append(replies, Reply{W: w, Status: st})
		}
	}
	add(takeWaiters(&m.removeW), st)
	add(takeWaiters(&m.stopW), st)
	add(takeWaiters(&m.startW), m.Status(messages.Errorf(messages.ErrStartFailed, "box %q was removed", m.id)))
	add(takeWaiters(&m.cancelled), m.cancelledStatus())
	for _, u := range m.updates {
		replies = append(replies, Reply{W: u.W, Status: messages.BoxStatus{ID: m.id, Err: messages.Errorf(messages.ErrNotFound, "%q was removed", m.id)}})
	}
	m.updates = nil
	m.emit(Publish{Event: messages.BoxRemoved{EventHeader: m.header()}}, End{Replies: replies})
	return Gone
}
