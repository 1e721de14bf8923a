package actors

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// boxActor owns one box: its lifecycle machine (package lifecycle decides
// every transition), its shim process through shimproc handles, and its
// files. It is a child of the root supervisor, named by the box ID.
//
// The actor is the machine's hands: it turns messages into lifecycle events
// and carries out the effects the machine answers with. Nothing in Receive
// waits on I/O: spawning, verifying, killing, writing state.json and
// removing the directory run on goroutines that report back with messages.
type boxActor struct {
	core  *core
	entry *boxEntry
	id    string
	box   layout.Box
	log   *logrus.Entry
	self  *actor.PID
	inc   uint64 // this incarnation; results of an earlier one are dropped

	m       *lifecycle.Machine
	spec    messages.StartBox // the box's stored request: what a spawn runs
	cgroup  string            // the box's cgroup directory, "" when none
	waiters map[lifecycle.Waiter]*actor.PID
	nextW   lifecycle.Waiter
	// settling are Shutdown's settleForShutdown requests, answered once no
	// start of the box is in flight.
	settling []*actor.PID
	handles  map[uint64]*shimproc.Handle // by generation; at most one live
	timers   map[lifecycle.Kind]scheduler.CancelFunc
	stop     chan struct{} // closed when the incarnation ends
	gone     bool          // the box ended for good; the root is stopping this actor
	// checking: this incarnation added the box's health checks to the
	// scheduler.
	checking bool
	// secrets keeps the spec's secret values registered with the log
	// redactor for as long as this incarnation may log about the box.
	secrets *logging.Registration
}

func newBoxActor(c *core, e *boxEntry) *boxActor {
	return &boxActor{
		core:    c,
		entry:   e,
		id:      e.id,
		box:     e.box,
		log:     c.log.WithField("box_id", e.id),
		inc:     c.incarnations.Add(1),
		cgroup:  c.boxCgroup(e.id),
		waiters: map[lifecycle.Waiter]*actor.PID{},
		handles: map[uint64]*shimproc.Handle{},
		timers:  map[lifecycle.Kind]scheduler.CancelFunc{},
		stop:    make(chan struct{}),
	}
}

// Receive implements actor.Actor.
func (a *boxActor) Receive(ctx actor.Context) {
	if h := a.core.hooks; h != nil && h.received != nil {
		h.received(a.id, ctx.Message())
	}
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
	case *boxEvent:
		if m.inc == a.inc {
			a.feed(ctx, m.ev)
		}
	case *timerFired:
		if m.inc == a.inc {
			a.deliver(m.ev)
		}
	case *loaded:
		if m.inc == a.inc {
			a.setSpec(m.spec)
			a.feed(ctx, m.ev)
		}
	case *specUpdated:
		if m.inc == a.inc {
			a.spec = m.spec // no new secret: an update changes no spec field
		}
	case *healthResult:
		a.onHealthResult(ctx, m)
	case *spawned:
		a.onSpawned(ctx, m)
	case *verified:
		a.onVerified(ctx, m)
	case *createBox:
		a.setSpec(m.req)
		a.feed(ctx, lifecycle.Create{W: a.waiter(ctx.Sender()), Opts: optionsOf(m.req)})
	case *messages.StartExisting:
		a.feed(ctx, lifecycle.Start{W: a.waiter(ctx.Sender())})
	case *messages.Stop:
		a.feed(ctx, lifecycle.Stop{W: a.waiter(ctx.Sender()), Timeout: m.Timeout})
	case *settleForShutdown:
		a.settling = append(a.settling, ctx.Sender())
		a.answerSettled()
	case *stopForShutdown:
		a.feed(ctx, lifecycle.Stop{W: a.waiter(ctx.Sender()), Cap: m.cap, Now: m.now})
	case *messages.Kill:
		a.feed(ctx, lifecycle.Kill{W: a.waiter(ctx.Sender())})
	case *messages.Remove:
		a.feed(ctx, lifecycle.Remove{W: a.waiter(ctx.Sender()), Force: m.Force})
	case *messages.Adopt:
		a.feed(ctx, lifecycle.Adopt{W: a.waiter(ctx.Sender()), PID: m.PID})
	case *messages.UpdateBox:
		if err := a.labelsHoldNoSecret(m); err != nil {
			ctx.Respond(a.m.Status(messages.AsError(err)))
			return
		}
		a.feed(ctx, lifecycle.Update{W: a.waiter(ctx.Sender()), Set: lifecycle.Settings{
			Restart: m.Restart, StopTimeout: m.StopTimeout, Labels: m.Labels, AddLabels: m.AddLabels, RemoveLabels: m.RemoveLabels}})
	case *messages.SignalBox:
		sig, err := parseSignal(m.Signal)
		if err != nil {
			ctx.Respond(a.m.Status(messages.AsError(err)))
			return
		}
		a.feed(ctx, lifecycle.Signal{W: a.waiter(ctx.Sender()), Sig: int(sig)})
	case *cancelStart:
		for w, pid := range a.waiters {
			if pid.Equal(m.caller) {
				a.feed(ctx, lifecycle.CancelStart{W: w})
				return
			}
		}
	case *messages.StatusRequest:
		ctx.Respond(a.m.Status(nil))
	case *messages.MetricsRequest:
		a.onMetrics(ctx)
	case *injectPanic:
		if a.core.cfg.faultInjection {
			panic("boxsup: injected panic in box actor " + a.id)
		}
	}
}

// setSpec keeps the box's stored request and registers its secrets with the
// log redactor before anything about the box can be logged with them.
func (a *boxActor) setSpec(req messages.StartBox) {
	a.spec = req
	if a.secrets != nil {
		a.secrets.Release()
	}
	a.secrets = logging.Register(req.Spec.SecretValues()...)
}

// labelsHoldNoSecret refuses an update whose labels hold one of the box's
// secret values: labels are shown by ps and inspect, and a Start with such
// labels is refused the same way (StartBox.CheckSecretsConfined).
func (a *boxActor) labelsHoldNoSecret(u *messages.UpdateBox) error {
	for _, set := range []map[string]string{u.Labels, u.AddLabels} {
		if err := a.spec.Spec.CheckLabelsConfined(set); err != nil {
			return err
		}
	}
	return nil
}

// optionsOf extracts a box's supervision settings from its request.
func optionsOf(req messages.StartBox) lifecycle.Options {
	o := lifecycle.Options{Engine: req.Spec.Engine, Restart: req.Restart, StopTimeout: req.StopTimeout,
		Detach: req.Detach || req.Spec.Detach, Labels: req.Labels, ReadyWhen: req.ReadyWhen, ReadyTimeout: req.ReadyTimeout}
	if req.HealthCheck != nil {
		check := req.HealthCheck.WithDefaults()
		o.Health = &check
	}
	return o
}

// onStarted begins an incarnation: a fresh box waits for its createBox; any
// other loads spec.json and state.json and reconciles with what runs.
func (a *boxActor) onStarted(ctx actor.Context) {
	a.self = ctx.Self()
	inc := a.inc
	a.entry.persist.attach(inc, func(ev lifecycle.Event) { a.deliverAs(inc, ev) })
	a.entry.mu.Lock()
	fresh := a.entry.fresh
	// Only the first incarnation of a new box waits for its createBox; one
	// restarted after a panic loads the box like any other and adopts its
	// shim.
	a.entry.fresh = false
	a.entry.mu.Unlock()
	a.m = lifecycle.New(a.id, a.core.home.Root, fresh, boxEnv{cgroup: a.cgroup}, &a.entry.history)
	if !fresh {
		a.load()
	}
}

// load reads the box's spec.json and state.json off the actor goroutine
// and reports them as a loaded message. A state.json that is damaged (its
// content refused: a typed error) is set aside for inspection; one that
// could not be read right now (EMFILE, ...) is left as it is.
func (a *boxActor) load() {
	inc, box, p, self := a.inc, a.box, a.entry.persist, a.self
	a.core.goHelper(func() {
		m := &loaded{inc: inc}
		a.core.withIO(func() {
			m.spec, m.ev.SpecErr = box.ReadSpec()
			m.ev.Rec, m.ev.RecErr = box.ReadState()
			if latest, ok := p.latestRecord(); ok {
				// The writer holds a newer record than the disk (a write
				// in flight, or failing): it is the truth.
				m.ev.Rec, m.ev.RecErr = latest, nil
			}
			var damaged *messages.Error
			if errors.As(m.ev.RecErr, &damaged) {
				if aside, err := box.SetAsideState(); err == nil && aside != "" {
					a.log.WithField("kept_as", aside).Warn("state.json is damaged; kept for inspection")
					m.ev.RecErr = fmt.Errorf("%w (kept as %s)", m.ev.RecErr, filepath.Base(aside))
				}
			}
		})
		m.ev.Opts = optionsOf(m.spec)
		send := func(ev lifecycle.Event) {
			if l, ok := ev.(lifecycle.Loaded); ok {
				a.core.root.Send(self, &loaded{inc: inc, spec: m.spec, ev: l})
			}
		}
		if h := a.core.hooks; h != nil && h.deliver != nil {
			h.deliver(a.id, m.ev, send) // a test may replace what was read
			return
		}
		send(m.ev)
	})
}

// feed hands one event to the machine and carries out its effects.
func (a *boxActor) feed(ctx actor.Context, ev lifecycle.Event) {
	if _, ok := ev.(lifecycle.RestartTimer); ok && a.core.shutting.Load() {
		// No new start once Shutdown began: it would be cut short when the
		// actor stops. The record says restarting; the next supervisor
		// carries the restart out, without counting it again.
		a.log.Debug("restart not begun: the supervisor is shutting down")
		return
	}
	effs, err := a.m.Handle(ev)
	if err != nil {
		a.log.WithError(err).Error("lifecycle refused a transition")
	}
	for _, e := range effs {
		a.do(ctx, e)
	}
	a.answerSettled()
}

// answerSettled answers Shutdown's settle requests once no start is in
// flight and its caller has been answered.
func (a *boxActor) answerSettled() {
	if len(a.settling) == 0 || a.m == nil || !a.m.StartSettled() {
		return
	}
	st := a.m.Status(nil)
	for _, pid := range a.settling {
		a.core.root.Send(pid, st)
	}
	a.settling = nil
}

// deliver hands a result of the actor's own work (or a timer) to the
// machine as a message to itself, through the test hook when one is set
// (the hook may hold it back to force an order of events).
func (a *boxActor) deliver(ev lifecycle.Event) { a.deliverAs(a.inc, ev) }

// waiter registers a caller and returns its token for the machine.
func (a *boxActor) waiter(pid *actor.PID) lifecycle.Waiter {
	if pid == nil {
		return 0
	}
	a.nextW++
	a.waiters[a.nextW] = pid
	return a.nextW
}

// reply answers a caller.
func (a *boxActor) reply(w lifecycle.Waiter, st messages.BoxStatus) {
	pid := a.waiters[w]
	delete(a.waiters, w)
	if pid != nil {
		if st.Err != nil {
			// An error may quote what the caller sent (an update's label
			// key): never one of the box's secrets.
			st.Err = messages.AsError(messages.RedactSecrets(st.Err, a.spec.Spec.SecretValues()))
		}
		a.core.root.Send(pid, st)
	}
}

// release ends this incarnation without touching the shim: timers are
// cancelled, handles (pidfds) closed, the keepalive stays with the entry and
// the writer goes on. Waiting callers are told to retry. Nothing here waits.
func (a *boxActor) release(why string) {
	a.stopChecks()
	for k, cancel := range a.timers {
		cancel()
		delete(a.timers, k)
	}
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	for gen, h := range a.handles {
		_ = h.Close()
		delete(a.handles, gen)
	}
	if a.m != nil {
		err := messages.Errorf(messages.ErrBusy, "box %q: %s during the request; retry", a.id, why)
		if a.core.shutting.Load() {
			err = messages.Errorf(messages.ErrShuttingDown, "box %q: the request was cut short", a.id)
		}
		for w := range a.waiters {
			a.reply(w, a.m.Status(err))
		}
		for _, pid := range a.settling {
			a.core.root.Send(pid, a.m.Status(err))
		}
		a.settling = nil
	}
	// The incarnation logs nothing more; its helpers scrub through the
	// shimproc handle's own registration.
	if a.secrets != nil {
		a.secrets.Release()
		a.secrets = nil
	}
}

// answerGone answers a request that reached the actor of a box that has
// ended for good (between boxGone and the root stopping the actor).
func (a *boxActor) answerGone(ctx actor.Context) bool {
	err := messages.Errorf(messages.ErrNotFound, "%q", a.id)
	switch ctx.Message().(type) {
	case *messages.MetricsRequest:
		ctx.Respond(&messages.MetricsResponse{Metrics: messages.BoxMetrics{ID: a.id}, Err: err})
	case *createBox, *messages.StartExisting, *messages.Stop, *stopForShutdown, *settleForShutdown, *messages.Kill, *messages.SignalBox,
		*messages.Remove, *messages.StatusRequest, *messages.Adopt, *messages.UpdateBox:
		ctx.Respond(messages.BoxStatus{ID: a.id, Err: err})
	case *cancelStart:
	default:
		return false
	}
	return true
}

// onMetrics samples the box tree off the actor goroutine; the sampler
// answers the requester directly.
func (a *boxActor) onMetrics(ctx actor.Context) {
	st := a.m.Status(nil)
	h := a.handles[st.Generation]
	if h == nil || !st.State.Live() {
		ctx.Respond(&messages.MetricsResponse{
			Metrics: messages.BoxMetrics{ID: a.id},
			Err:     messages.Errorf(messages.ErrNotRunning, "box %q is %s", a.id, st.State),
		})
		return
	}
	sender, root, id := ctx.Sender(), a.core.root, a.id
	c := a.core
	c.goHelper(func() {
		var m messages.BoxMetrics
		var err error
		c.withIO(func() { m, err = h.Metrics() })
		m.ID = id
		if errors.Is(err, shimproc.ErrGone) {
			err = messages.Errorf(messages.ErrNotRunning, "box %q exited", id)
		}
		root.Send(sender, &messages.MetricsResponse{Metrics: m, Err: messages.AsError(err)})
	})
}

// parseSignal accepts "SIGHUP", "HUP" or "1".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	if n := messages.SignalNumber(strings.ToUpper(s)); n > 0 {
		return syscall.Signal(n), nil
	}
	return 0, messages.Errorf(messages.ErrBadSpec, "unknown signal %q", s)
}
