package lifecycle

import (
	"fmt"

	"github.com/boxsup/boxsup/messages"
)

// Restarting a guest in place (docs/SHIM-PROTOCOL.md §16). A shim spawned
// with the offer asks, when its guest ends on its own, whether to start it
// again itself, keeping its process, its cgroup and the box's generation.
// The machine judges the exit as it judges a shim's exit, and says yes only
// for a restart the policy grants at once, and only once the exit is
// recorded on disk; the shim waits for the answer. Anything else (a delay,
// the restart limit, a stop under way, a failed write) is a no: the shim
// ends and its exit takes the ordinary path.

// offersRestartInPlace reports whether the next generation's shim may be
// offered restarts in place: a policy that can restart, and no health
// check (its probes and start period belong to a generation). The actor
// adds what the machine cannot know: whether the engine honours it.
func (m *Machine) offersRestartInPlace() bool {
	mode := m.opts.Restart.WithDefaults().Mode
	return m.opts.Startable && m.opts.Health == nil && m.opts.ReadyWhen != messages.ReadyWhenHealthy &&
		(mode == messages.RestartAlways || mode == messages.RestartOnFailure)
}

func onGuestExited(m *Machine, ev Event) Phase {
	e := ev.(GuestExited)
	if e.Gen != m.rec.Generation || m.proc == nil || m.granted != nil || !m.offersRestartInPlace() {
		return refuseGuestRestart(m, ev)
	}
	now := m.env.Now()
	uptime := now.Sub(m.spawnedAt)
	policy := m.opts.Restart.WithDefaults()
	if !m.hist.restartsAtOnce(policy, e.Exit, uptime, now) {
		// The ordinary path judges it (once) when the shim has ended.
		return refuseGuestRestart(m, ev)
	}
	d := m.hist.decide(policy, e.Exit, uptime, now, m.env.Jitter)
	exit := e.Exit
	gen, pid := e.Gen, m.pid()
	m.rec.LastExit = &exit
	m.rec.Restarts++
	m.rec.Reason = fmt.Sprintf("restarted in place after %s", exit)
	m.guestExitAt = now
	hdr := m.header()
	m.logf("info", nil, "guest exited (%s); restart #%d in place", exit, d.attempt)
	m.commit(func(durable bool, _ error) {
		// The exit is on disk before the next guest runs; a stop that came
		// meanwhile, or a failed write, makes it a no.
		restart := durable && m.phase == Running && m.rec.Generation == gen && m.proc != nil
		if !restart {
			// Nothing was restarted: the shim ends, and its exit, the same
			// one, is reported and counted once on the ordinary path.
			m.granted = &d
			m.rec.Restarts--
			m.emit(AnswerGuest{Gen: gen, Restart: false})
			return
		}
		m.emit(Publish{Event: messages.BoxExited{EventHeader: hdr, PID: pid, Exit: exit}},
			Publish{Event: messages.BoxRestarting{EventHeader: hdr, Attempt: d.attempt, InPlace: true}},
			AnswerGuest{Gen: gen, Restart: true})
	})
	return Running
}

// refuseGuestRestart tells the shim to end: its exit comes as ProcExited.
func refuseGuestRestart(m *Machine, ev Event) Phase {
	m.emit(AnswerGuest{Gen: ev.(GuestExited).Gen, Restart: false})
	return m.phase
}

func onGuestStarted(m *Machine, ev Event) Phase {
	e := ev.(GuestStarted)
	if e.Gen != m.rec.Generation || m.proc == nil {
		return m.phase
	}
	now := m.env.Now()
	m.spawnedAt = now // the new guest's uptime counts from here
	took := now.Sub(m.guestExitAt)
	m.emit(Publish{Event: messages.BoxReady{EventHeader: m.header(), PID: m.pid(), Took: took, InPlace: true}})
	return m.phase
}
