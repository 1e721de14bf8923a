package actors

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// onLoaded reconciles what state.json says with what runs (design.md §4):
// a live record is adopted only after its identity is verified; a dead one
// is reported with its exit.json status, or as lost. Nothing is respawned
// blindly and nothing is deleted.
func (a *BoxActor) onLoaded(ctx actor.Context, m *loaded) {
	a.busy = false
	a.loaded = true
	a.specDurable = true // read back from disk
	a.spec = m.spec
	a.rec = m.rec
	now := time.Now().UTC()
	initial := func() { ctx.Send(ctx.Parent(), &statusChanged{status: a.status(nil), initial: true}) }

	switch {
	case m.recErr != nil:
		a.rec = messages.StateRecord{ID: a.id, CreatedAt: now}
		if errors.Is(m.recErr, fs.ErrNotExist) {
			a.rec.State = messages.StateExited
			a.rec.Reason = "no state record"
		} else {
			a.rec.State = messages.StateFailed
			a.rec.Reason = "unreadable state.json: " + m.recErr.Error()
		}
		a.log.WithError(m.recErr).Warn("box state could not be read; left as is")
		initial() // reported, not rewritten: the file stays for inspection
		a.settleRequests()
		return
	case m.specErr != nil && a.rec.State.Live():
		a.log.WithError(m.specErr).Warn("box spec could not be read; adopting without it")
	}
	if m.specErr != nil {
		a.spec = messages.StartBox{ID: a.id}
	}
	a.rec.ID = a.id

	switch a.rec.State {
	case messages.StateStarting, messages.StateRunning, messages.StateStopping:
		a.beginAdopt(initial)
	case messages.StateRestarting:
		if a.stopRequested || a.removing {
			a.rec.State = messages.StateExited
			a.rec.Reason = "stopped while waiting to restart"
			a.commit(func() { initial(); a.settleRequests() })
			return
		}
		// A restart was pending when the previous supervisor went away: the
		// policy already granted it.
		a.commit(initial)
		a.restartCancel = a.core.sched.SendOnce(0, a.self, &restartNow{gen: a.rec.Generation})
	default:
		if !a.rec.State.Valid() {
			a.rec.State = messages.StateFailed
			a.rec.Reason = fmt.Sprintf("unknown state %q in state.json", m.rec.State)
		}
		initial()
		a.settleRequests()
	}
}

// settleRequests answers the Stop and Remove requests that arrived while a
// box at rest was being loaded: there is nothing to stop, and a removal can
// proceed.
func (a *BoxActor) settleRequests() {
	a.stopRequested = false
	a.replyAll(&a.stopWaiters, a.status(nil))
	if a.removing {
		a.beginRemove()
	}
}

// beginAdopt verifies and adopts the recorded shim off the actor goroutine,
// under a new generation so that anything the previous incarnation armed is
// recognisably stale.
func (a *BoxActor) beginAdopt(initial func()) {
	a.rec.Generation++
	a.busy = true
	a.pendingInitial = initial
	gen, rec, box, root, self := a.rec.Generation, a.rec, a.box, a.core.root, a.self
	log := a.log.WithField("gen", gen)
	go func() {
		var m *adopted
		a.core.withIO(func() { m = adoptRecorded(box, rec, gen, log) })
		root.Send(self, m)
	}()
}

// adoptRecorded opens the recorded process and checks its identity, or says
// why it cannot. It runs on a helper goroutine.
func adoptRecorded(box layout.Box, rec messages.StateRecord, gen uint64, log logrus.FieldLogger) *adopted {
	id := rec.Identity
	if id.Zero() && rec.Cgroup != "" {
		// Died mid-spawn before recording the identity: the box cgroup is
		// the box's alone, so its oldest member is the shim.
		if found, err := oldestInCgroup(rec.Cgroup); err == nil {
			id = found
		}
	}
	if id.Zero() {
		return &adopted{gen: gen, exit: lostExit("no process identity was recorded"), lost: "no identity"}
	}
	h, err := shimproc.Adopt(box, id, shimproc.AdoptOptions{Cgroup: rec.Cgroup, Logger: log})
	switch {
	case err == nil:
		return &adopted{gen: gen, handle: h}
	case errors.Is(err, shimproc.ErrGone):
		if ex, rerr := box.ReadExit(); rerr == nil && !ex.FinishedAt.Before(rec.StartedAt.Truncate(time.Second)) {
			ex.Source = messages.SourceExitFile
			return &adopted{gen: gen, exit: ex, lost: "exited while unsupervised"}
		}
		return &adopted{gen: gen, exit: lostExit("process gone, no exit record"), lost: "gone"}
	case errors.Is(err, messages.ErrIdentityMismatch):
		return &adopted{gen: gen, exit: lostExit("pid recycled by another process"), lost: "identity mismatch"}
	default:
		return &adopted{gen: gen, exit: lostExit(err.Error()), lost: err.Error()}
	}
}

func lostExit(why string) messages.ExitRecord {
	e := messages.UnknownExit(time.Now().UTC())
	e.Reason = "lost: " + why
	return e
}

func (a *BoxActor) onAdopted(ctx actor.Context, m *adopted) {
	if m.gen != a.rec.Generation || a.handle != nil {
		if m.handle != nil {
			_ = m.handle.Close()
		}
		return
	}
	a.busy = false
	initial := a.pendingInitial
	a.pendingInitial = nil
	if initial == nil {
		initial = func() {}
	}
	wasStopping := a.rec.State == messages.StateStopping

	if m.handle == nil {
		a.log.WithField("why", m.lost).Info("recorded shim is not running")
		a.rec.Identity = messages.Identity{}
		a.rec.LastExit = &m.exit
		uptime := time.Since(a.rec.StartedAt)
		ev := messages.BoxExited{EventHeader: a.header(), Exit: m.exit, Requested: wasStopping || a.stopRequested}
		if wasStopping || a.stopRequested || a.removing {
			a.rec.State = messages.StateExited
			a.rec.Reason = m.exit.Reason
			a.commit(func() {
				initial()
				a.core.publish(ev)
				a.replyAll(&a.stopWaiters, a.status(nil))
				if a.removing {
					a.beginRemove()
				}
			})
			return
		}
		a.rec.State = messages.StateRunning // judged as an exit of a running box
		a.judgeExit(m.exit, uptime, ev)
		a.pending[len(a.pending)-1].after = chain(initial, a.pending[len(a.pending)-1].after)
		return
	}

	h := m.handle
	a.handle = h
	a.spawnedAt = a.rec.StartedAt
	a.watchExit(h, m.gen)
	a.log.WithField("pid", h.PID()).Info("adopted running shim")
	announce := func() {
		initial()
		a.core.publish(messages.BoxAdopted{EventHeader: a.header(), PID: h.PID()})
	}
	if a.rec.State != messages.StateStarting && a.rec.Identity == h.Identity() {
		// Only the in-memory generation changed: nothing new to persist,
		// which keeps adoption of many boxes free of writes.
		announce()
	} else {
		// The ready pipe died with the previous supervisor: a shim that is
		// alive after it is taken as ready.
		a.rec.State = messages.StateRunning
		a.rec.Identity = h.Identity()
		a.commit(announce)
	}
	if wasStopping || a.stopRequested {
		a.beginStop(a.stopTimeout(0))
	}
}

// chain runs f then g (either may be nil).
func chain(f, g func()) func() {
	return func() {
		if f != nil {
			f()
		}
		if g != nil {
			g()
		}
	}
}

// oldestInCgroup returns the identity of the earliest-started process in a
// box cgroup: the shim, which was cloned into it before anything else.
func oldestInCgroup(cgroup string) (messages.Identity, error) {
	pids, err := shimproc.FindCgroupProcs(cgroup)
	if err != nil {
		return messages.Identity{}, err
	}
	var best messages.Identity
	for _, pid := range pids {
		id, err := shimproc.ReadIdentity(pid)
		if err != nil {
			continue
		}
		if best.Zero() || id.StartTime < best.StartTime {
			best = id
		}
	}
	if best.Zero() {
		return best, fs.ErrNotExist
	}
	return best, nil
}
