package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// BoxActor owns one box: its shim process (through a shimproc.Handle), its
// state machine and its state.json. It is a child of the RootSupervisor,
// named by the box ID. See design.md §4 and docs/ARCHITECTURE.md.
type BoxActor struct {
	core  *core
	entry *boxEntry
	id    string
	box   layout.Box
	log   *logrus.Entry
	self  *actor.PID
	inc   uint64 // this incarnation; messages from an earlier one are dropped

	spec   messages.StartBox
	rec    messages.StateRecord
	loaded bool // spec and state are known (created, or read from disk)

	handle    *shimproc.Handle
	watchDone chan struct{}
	watchWG   sync.WaitGroup
	busy      bool // a create, spawn, adopt or remove goroutine is in flight

	startWaiters  []*actor.PID
	stopWaiters   []*actor.PID
	removeWaiters []*actor.PID
	stopRequested bool // the running generation is to end (Stop, Kill, Remove)
	killed        bool // the stop timeout expired and the tree was SIGKILLed
	killSent      bool // this incarnation SIGKILLed the tree (timeout or Kill)
	removing      bool
	removeStarted bool // the directory's removal is under way
	gone          bool // the box ended for good; the root is stopping this actor
	spawnedAt     time.Time

	// pendingInitial reports the first status to the root once a boot
	// adoption settles.
	pendingInitial func()

	killCancel    scheduler.CancelFunc
	restartCancel scheduler.CancelFunc

	// specDurable is false from a new box's Prepare until Persist made its
	// spec.json durable; afterDurable holds what waits for that.
	specDurable  bool
	afterDurable []func()

	persist *persister
	seq     uint64
	pending []pendingCommit
}

// pendingCommit is work that waits until state.json holds record seq:
// replies and events are sent only after the transition is durable.
type pendingCommit struct {
	seq   uint64
	after func()
}

func newBoxActor(c *core, e *boxEntry) *BoxActor {
	return &BoxActor{
		core:  c,
		entry: e,
		id:    e.id,
		box:   e.box,
		log:   c.log.WithField("box_id", e.id),
		inc:   c.incarnations.Add(1),
	}
}

// Receive implements actor.Actor.
func (a *BoxActor) Receive(ctx actor.Context) {
	if a.gone && a.answerGone(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.onStarted(ctx)
	case *actor.Restarting:
		a.release("box actor restarted")
	case *actor.Stopping:
		a.release("box actor stopped")
	case *createBox:
		a.onCreate(ctx, m)
	case *created:
		if m.inc == a.inc {
			a.onCreated(ctx, m)
		}
	case *loaded:
		if m.inc == a.inc {
			a.onLoaded(ctx, m)
		}
	case *spawned:
		a.onSpawned(ctx, m)
	case *readied:
		a.onReadied(ctx, m)
	case *adopted:
		a.onAdopted(ctx, m)
	case *exited:
		a.onExited(ctx, m)
	case *specDurable:
		if m.inc == a.inc {
			a.onSpecDurable(m)
		}
	case *persisted:
		if m.inc == a.inc {
			a.onPersisted(ctx, m)
		}
	case *restartNow:
		a.onRestartNow(ctx, m)
	case *killedTree:
		// A kill that raced the exit (the handle closed, the cgroup gone)
		// did its job: only a failure against a still-running shim counts.
		if m.inc == a.inc && m.err != nil && m.gen == a.rec.Generation && a.handle != nil {
			a.log.WithError(m.err).Warn("killing the box's process tree failed")
		}
	case *removed:
		if m.inc == a.inc {
			a.onRemoved(ctx, m)
		}
	case *messages.StartExisting:
		a.onStartExisting(ctx)
	case *messages.Stop:
		a.onStop(ctx, m)
	case *stopForShutdown:
		a.onStopForShutdown(ctx, m)
	case *messages.Kill:
		a.onKill(ctx, m)
	case *messages.SignalBox:
		a.onSignal(ctx, m)
	case *messages.Remove:
		a.onRemove(ctx, m)
	case *messages.StatusRequest:
		ctx.Respond(a.status(nil))
	case *messages.MetricsRequest:
		a.onMetrics(ctx)
	case *InjectPanic:
		if a.core.cfg.FaultInjection {
			panic("boxsup: injected panic in box actor " + a.id)
		}
	}
}

// onStarted begins an incarnation: a fresh box waits for its createBox; any
// other loads spec.json and state.json and reconciles with what runs.
func (a *BoxActor) onStarted(ctx actor.Context) {
	a.self = ctx.Self()
	a.persist = newPersister(a.box, a.core.withIO, a.inc, a.core.root, a.self)
	a.entry.mu.Lock()
	fresh := a.entry.fresh
	a.entry.mu.Unlock()
	if fresh {
		return
	}
	a.busy = true
	inc, box, root, self := a.inc, a.box, a.core.root, a.self
	go func() {
		m := &loaded{inc: inc}
		a.core.withIO(func() {
			m.spec, m.specErr = box.ReadSpec()
			m.rec, m.recErr = box.ReadState()
		})
		root.Send(self, m)
	}()
}

// release ends this incarnation without touching the shim: timers are
// cancelled, the handle (pidfd) is closed, the keepalive stays with the
// entry. Waiting callers are told to retry.
func (a *BoxActor) release(why string) {
	a.cancelTimers()
	a.stopWatcher()
	if a.handle != nil {
		_ = a.handle.Close()
		a.handle = nil
	}
	if a.persist != nil {
		a.persist.wait()
	}
	err := messages.Errorf(messages.ErrBusy, "box %q: %s during the request; retry", a.id, why)
	a.replyAll(&a.startWaiters, a.status(err))
	a.replyAll(&a.stopWaiters, a.status(err))
	a.replyAll(&a.removeWaiters, a.status(err))
}

func (a *BoxActor) cancelTimers() {
	if a.killCancel != nil {
		a.killCancel()
		a.killCancel = nil
	}
	if a.restartCancel != nil {
		a.restartCancel()
		a.restartCancel = nil
	}
}

// commit records a transition: the in-memory record is queued for
// state.json, and after runs (then the root hears of the new status) once
// the record is on disk.
func (a *BoxActor) commit(after func()) {
	a.rec.UpdatedAt = time.Now().UTC()
	a.seq++
	a.persist.submit(a.seq, a.rec)
	a.pending = append(a.pending, pendingCommit{seq: a.seq, after: after})
}

func (a *BoxActor) onPersisted(ctx actor.Context, m *persisted) {
	if m.err != nil {
		// The transition stands (the process did what it did); a full disk
		// must not kill boxes. The next successful write catches up.
		a.log.WithError(m.err).Error("writing state.json failed")
	}
	n := 0
	for _, p := range a.pending {
		if p.seq > m.seq {
			break
		}
		if p.after != nil {
			p.after()
		}
		n++
	}
	if n == 0 {
		return
	}
	a.pending = a.pending[n:]
	if !a.gone { // the root has forgotten a gone box; do not remind it
		ctx.Send(ctx.Parent(), &statusChanged{status: a.status(nil)})
	}
}

// status describes the box now, with err attached for replies.
func (a *BoxActor) status(err *messages.Error) messages.BoxStatus {
	st := messages.BoxStatus{
		ID:         a.id,
		State:      a.rec.State,
		Engine:     a.spec.Spec.Engine,
		PID:        a.rec.Identity.PID,
		Generation: a.rec.Generation,
		Restarts:   a.rec.Restarts,
		Detached:   a.spec.Spec.Detach,
		LastExit:   a.rec.LastExit,
		Reason:     a.rec.Reason,
		Killed:     a.killed,
		CreatedAt:  a.rec.CreatedAt,
		StartedAt:  a.rec.StartedAt,
		Err:        err,
	}
	if st.State == "" {
		st.State = messages.StateCreated
	}
	return st
}

// replyAll answers and clears a list of waiting requesters.
func (a *BoxActor) replyAll(waiters *[]*actor.PID, msg any) {
	for _, pid := range *waiters {
		if pid != nil {
			a.core.root.Send(pid, msg)
		}
	}
	*waiters = nil
}

// event fills an event header for the current generation.
func (a *BoxActor) header() messages.EventHeader {
	return messages.EventHeader{BoxID: a.id, At: time.Now().UTC(), Generation: a.rec.Generation}
}

// watchExit forwards the handle's exit notification to the actor. The
// goroutine parks on a channel; the pidfd wait itself is in the netpoller.
func (a *BoxActor) watchExit(h *shimproc.Handle, gen uint64) {
	done := make(chan struct{})
	a.watchDone = done
	root, self := a.core.root, a.self
	a.watchWG.Add(1)
	go func() {
		defer a.watchWG.Done()
		select {
		case <-h.Exited():
			root.Send(self, &exited{gen: gen, exit: h.ExitStatus()})
		case <-done:
		}
	}()
}

func (a *BoxActor) stopWatcher() {
	if a.watchDone != nil {
		close(a.watchDone)
		a.watchDone = nil
	}
	a.watchWG.Wait()
}

// closeHandle drops the current handle after its shim exited; the cgroup is
// removed off the actor goroutine.
func (a *BoxActor) closeHandle() {
	a.stopWatcher()
	h := a.handle
	a.handle = nil
	if h == nil {
		return
	}
	_ = h.Close()
	c, log := a.core, a.log
	c.cgroupRemovals.Add(1)
	go func() {
		defer c.cgroupRemovals.Done()
		if err := h.RemoveCgroup(); err != nil {
			log.WithError(err).Debug("removing the box cgroup failed")
		}
	}()
}

// answerGone answers a request that reached the actor of a box that has
// ended for good (between boxGone and the root stopping the actor).
func (a *BoxActor) answerGone(ctx actor.Context) bool {
	err := messages.Errorf(messages.ErrNotFound, "%q", a.id)
	switch ctx.Message().(type) {
	case *messages.MetricsRequest:
		ctx.Respond(&messages.MetricsResponse{Metrics: messages.BoxMetrics{ID: a.id}, Err: err})
	case *createBox, *messages.StartExisting, *messages.Stop, *stopForShutdown, *messages.Kill, *messages.SignalBox,
		*messages.Remove, *messages.StatusRequest:
		ctx.Respond(messages.BoxStatus{ID: a.id, Err: err})
	default:
		return false
	}
	return true
}
