package lifecycle

import (
	"time"

	"github.com/boxsup/boxsup/health"
	"github.com/boxsup/boxsup/messages"
)

// Health checks: a box with a check is probed while it is AwaitHealthy or
// Running (the actor runs the probes; the results come back as Health
// events). A Tracker per generation applies Docker's rules; the machine
// acts on what changes: the first pass ends an AwaitHealthy start, and
// unhealthy fails it, or, under the on-unhealthy policy, stops a running box
// to start it again.

// checks is the health of the generation being probed.
type checks struct {
	gen     uint64
	tracker *health.Tracker
}

// probed reports whether a phase is one whose generation is probed.
func probed(p Phase) bool { return p == AwaitHealthy || p == Running }

// syncChecks starts the probes of a generation that entered a probed phase
// and stops those of one that left it, after every event: no handler has
// to remember them.
func (m *Machine) syncChecks() {
	want := m.opts.Health != nil && probed(m.phase) && m.proc != nil
	switch {
	case want && m.checks.tracker != nil && m.checks.gen == m.rec.Generation:
	case want:
		since := m.healthSince
		if since.IsZero() {
			// An adopted generation: its start period counts from its
			// start, not once more from the adoption.
			since = m.rec.StartedAt
		}
		if m.checks.tracker != nil {
			m.emit(StopChecks{})
		}
		m.checks = checks{gen: m.rec.Generation, tracker: health.NewTracker(*m.opts.Health, since)}
		m.emit(StartChecks{Gen: m.rec.Generation, Since: since})
	case m.checks.tracker != nil:
		m.checks = checks{}
		m.emit(StopChecks{})
	}
}

// health returns the probed generation's health for a status, nil when it
// is not probed.
func (m *Machine) health() *messages.BoxHealth {
	if m.checks.tracker == nil || m.checks.gen != m.rec.Generation {
		return nil
	}
	h := m.checks.tracker.Status()
	return &h
}

// observe feeds a result of the probed generation to its tracker. ours is
// false for a result of another generation; ev is the event a change of
// state publishes (nil when nothing changed), for the handler to publish
// after the transition it makes (publishHealth).
func (m *Machine) observe(e Health) (tr health.Transition, ev messages.Event, ours bool) {
	if e.Gen != m.rec.Generation || m.checks.tracker == nil || m.checks.gen != e.Gen {
		return health.Transition{}, nil, false
	}
	tr = m.checks.tracker.Observe(e.Result)
	switch {
	case tr.To == messages.HealthHealthy && (tr.Changed() || tr.FirstHealthy):
		ev = messages.BoxHealthy{EventHeader: m.header(), First: tr.FirstHealthy}
	case tr.To == messages.HealthUnhealthy && tr.Changed():
		ev = messages.BoxUnhealthy{EventHeader: m.header(), FailingStreak: m.checks.tracker.Status().FailingStreak, Last: e.Result}
	}
	return tr, ev, true
}

// publishHealth publishes a change of health once the announcements of the
// transitions before it are out: a BoxHealthy never overtakes its BoxReady.
func (m *Machine) publishHealth(ev messages.Event) {
	if ev != nil {
		m.afterCommits(func() { m.emit(Publish{Event: ev}) })
	}
}

func onHealthRunning(m *Machine, ev Event) Phase {
	tr, changed, ours := m.observe(ev.(Health))
	if !ours {
		return m.phase
	}
	m.publishHealth(changed)
	if !tr.Changed() || tr.To != messages.HealthUnhealthy {
		return m.phase
	}
	if m.opts.Restart.Mode != messages.RestartOnUnhealthy {
		m.logf("warn", nil, "box is unhealthy: %s", ev.(Health).Result.Reason)
		return m.phase
	}
	m.logf("warn", nil, "box is unhealthy (%s); restarting it (restart policy on-unhealthy)", ev.(Health).Result.Reason)
	m.stopCause = stopUnhealthy
	return m.beginStop(m.stopTimeout(0, 0))
}

func onHealthAwaiting(m *Machine, ev Event) Phase {
	e := ev.(Health)
	tr, changed, ours := m.observe(e)
	switch {
	case !ours:
		return m.phase
	case tr.FirstHealthy:
		m.emit(Disarm{Timer: HealthTimer{}})
		next := m.becomeRunning()
		m.publishHealth(changed)
		return next
	case tr.Changed() && tr.To == messages.HealthUnhealthy:
		m.publishHealth(changed)
		return m.healthyStartFailed(messages.Errorf(messages.ErrStartFailed,
			"box %q turned unhealthy before its first passing health check: %s", m.id, e.Result.Reason))
	}
	m.publishHealth(changed)
	return m.phase
}

func onHealthTimer(m *Machine, ev Event) Phase {
	if ev.(HealthTimer).Gen != m.rec.Generation {
		return m.phase
	}
	return m.healthyStartFailed(messages.Errorf(messages.ErrReadyTimeout,
		"box %q: no passing health check within its ready timeout %v", m.id, m.readyTimeout()))
}

// awaitHealthy follows the ready byte of a box that is ready only once
// healthy: its checks start, and the rest of its ready timeout is armed.
func (m *Machine) awaitHealthy() Phase {
	left := m.readyTimeout() - m.env.Now().Sub(m.spawnedAt)
	m.emit(Arm{Timer: HealthTimer{Gen: m.rec.Generation}, Delay: max(left, 0)})
	return AwaitHealthy
}

// healthyStartFailed ends an AwaitHealthy start that will not become
// healthy. A caller's start fails (ErrStartFailed or ErrReadyTimeout) and
// the box is killed and failed, as when its ready byte never comes; a
// restart the policy granted is judged like a crash instead, counted
// against the restart limit, so that a slow recovery is retried.
func (m *Machine) healthyStartFailed(failure *messages.Error) Phase {
	m.emit(Disarm{Timer: HealthTimer{}})
	if len(m.startW) == 0 && len(m.cancelled) == 0 {
		m.logf("warn", nil, "%s; stopping it to restart", failure.Msg)
		m.stopCause = stopUnhealthy
		return m.beginStop(m.stopTimeout(0, 0))
	}
	m.replyAll(&m.startW, m.Status(failure))
	m.failErr = failure
	return m.beginKill(causeStartFailed)
}

// onExitAwaitingHealthy: the shim exited after its ready byte, before its
// first passing check. The start failed (a granted restart's exit is
// judged by the policy).
func onExitAwaitingHealthy(m *Machine, ev Event) Phase {
	e := ev.(ProcExited)
	if e.Gen != m.rec.Generation {
		return m.phase
	}
	return m.exitAwaitingHealthy(e.Exit)
}

func (m *Machine) exitAwaitingHealthy(exit messages.ExitRecord) Phase {
	m.emit(Disarm{Timer: HealthTimer{}})
	if len(m.startW) == 0 && len(m.cancelled) == 0 {
		return m.onExitOfRunning(exit)
	}
	m.release()
	return m.failStart(messages.Errorf(messages.ErrStartFailed, "box %q exited before its first passing health check", m.id), &exit)
}

// readyWhenHealthy reports whether a start of the box ends at its first
// passing health check rather than at its ready byte.
func (m *Machine) readyWhenHealthy() bool {
	return m.opts.Health != nil && m.opts.ReadyWhen == messages.ReadyWhenHealthy
}

// readyTimeout is the box's ready timeout.
func (m *Machine) readyTimeout() time.Duration {
	if m.opts.ReadyTimeout > 0 {
		return m.opts.ReadyTimeout
	}
	return messages.DefaultReadyTimeout
}
