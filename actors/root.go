package actors

import (
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// rootSupervisor owns the box actors of one Supervisor. It routes requests
// by box ID, answers List from a status cache the boxes keep current,
// restarts box actors that panic (HandleFailure), and on every start
// (supervisor boot, or its own restart after a panic) spawns one box actor
// per box directory, each of which reconciles itself. Every request of
// package messages sent to it, by pointer or by value, is answered.
type rootSupervisor struct {
	core        *core
	children    map[string]*actor.PID
	statuses    map[string]messages.BoxStatus
	booting     map[string]bool
	booted      bool
	bootWaiters []*actor.PID
	// deferred holds requests that arrived before the boot reconcile
	// finished (after the root's own restart, too): they are replayed, with
	// their original sender, once every box has reported.
	deferred []deferredRequest
	// gone holds boxes whose actor is stopping for good, until it has
	// terminated and its name is free.
	gone map[string]*boxGone
	// newDetached says, for a box created by a Start whose actor has not
	// reported a status yet, whether it is detached.
	newDetached map[string]bool
	// closing is set once Shutdown's stop-all has been fanned out: a start
	// that reached the root after it would get an actor the stop-all never
	// saw, stopped mid-start when the root stops.
	closing bool
}

type deferredRequest struct {
	msg    any
	sender *actor.PID
}

func newRoot(c *core) *rootSupervisor {
	return &rootSupervisor{
		core:        c,
		children:    map[string]*actor.PID{},
		statuses:    map[string]messages.BoxStatus{},
		booting:     map[string]bool{},
		gone:        map[string]*boxGone{},
		newDetached: map[string]bool{},
	}
}

// Receive implements actor.Actor.
func (r *rootSupervisor) Receive(ctx actor.Context) {
	msg := pointerForm(ctx.Message())
	if !r.booted && isRequest(msg) {
		r.deferred = append(r.deferred, deferredRequest{msg: msg, sender: ctx.Sender()})
		return
	}
	if r.closing && r.refuseStart(ctx, msg) {
		return
	}
	switch m := msg.(type) {
	case *actor.Started:
		home, root, self := r.core.home, r.core.root, ctx.Self()
		go func() {
			ids, err := home.BoxIDs()
			root.Send(self, &bootListed{ids: ids, err: err})
		}()
	case *bootListed:
		r.onBootListed(ctx, m)
	case *awaitBoot:
		if r.booted {
			ctx.Respond(&bootDone{boxes: len(r.statuses)})
		} else {
			r.bootWaiters = append(r.bootWaiters, ctx.Sender())
		}
	case *statusChanged:
		r.onStatus(ctx, m)
	case *boxGone:
		r.onGone(ctx, m)
	case *actor.Terminated:
		r.onTerminated(ctx, m)
	case *messages.StartBox:
		r.onStart(ctx, m)
	case *messages.StartExisting:
		r.route(ctx, m.ID, m)
	case *messages.Stop:
		r.route(ctx, m.ID, m)
	case *messages.Kill:
		r.route(ctx, m.ID, m)
	case *messages.SignalBox:
		r.route(ctx, m.ID, m)
	case *messages.Remove:
		r.route(ctx, m.ID, m)
	case *messages.Adopt:
		r.route(ctx, m.ID, m)
	case *messages.UpdateBox:
		if err := validateUpdate(m); err != nil {
			ctx.Respond(messages.BoxStatus{ID: m.ID, Err: messages.AsError(err)})
			return
		}
		r.route(ctx, m.ID, m)
	case *messages.StatusRequest:
		r.route(ctx, m.ID, m)
	case *cancelStart:
		if pid, ok := r.children[m.id]; ok && r.gone[m.id] == nil {
			ctx.Forward(pid)
		}
	case *healthResult:
		if pid, ok := r.children[m.id]; ok && r.gone[m.id] == nil {
			ctx.Send(pid, m)
		}
	case *messages.MetricsRequest:
		if pid, ok := r.children[m.ID]; ok && r.gone[m.ID] == nil {
			ctx.RequestWithCustomSender(pid, m, ctx.Sender())
		} else {
			ctx.Respond(&messages.MetricsResponse{Metrics: messages.BoxMetrics{ID: m.ID}, Err: notFound(m.ID)})
		}
	case *messages.ListRequest:
		ctx.Respond(&messages.ListResponse{Boxes: r.list()})
	case *messages.MetricsAllRequest:
		r.fanOut(ctx, r.list(), func(st messages.BoxStatus) any {
			if !st.State.Live() {
				return nil
			}
			return &messages.MetricsRequest{ID: st.ID}
		}, r.core.cfg.RequestTimeout, false)
	case *stopAll:
		r.closing = true
		r.fanOut(ctx, r.childList(), func(st messages.BoxStatus) any {
			switch {
			case m.attachedOnly && st.Detached && (st.State == messages.StateStarting || st.State == messages.StateRestarting) && !m.now:
				// Left running, but not half started: a start is seen
				// through first (its caller hears how it went). A restart
				// still waiting for its backoff is not begun any more (the
				// actor drops the timer while shutting down); the record
				// says restarting, and the next supervisor carries it out.
				return &settleForShutdown{}
			case st.State == messages.StateStarting:
				// Under StopAll (or for an attached box) a start in flight
				// is stopped like a running box, never left half done.
			case !st.State.Live() && st.State != messages.StateRestarting:
				return nil
			case m.attachedOnly && st.Detached:
				return nil
			}
			return &stopForShutdown{cap: m.timeoutCap, now: m.now}
		}, m.timeoutCap+killWait, true)
	case *injectPanic:
		if !r.core.cfg.faultInjection {
			return
		}
		if m.id == "" {
			panic("boxsup: injected panic in the root supervisor")
		}
		r.route(ctx, m.id, m)
	}
}

// refuseStart answers a request that would start a box (or take one over)
// with messages.ErrShuttingDown and reports whether msg was one. The facade
// refuses them once Shutdown began; this catches those sent just before.
func (r *rootSupervisor) refuseStart(ctx actor.Context, msg any) bool {
	var id string
	switch m := msg.(type) {
	case *messages.StartBox:
		id = m.ID
	case *messages.StartExisting:
		id = m.ID
	case *messages.Adopt:
		id = m.ID
	default:
		return false
	}
	ctx.Respond(messages.BoxStatus{ID: id, Err: messages.Errorf(messages.ErrShuttingDown, "box %q was not started", id)})
	return true
}

func notFound(id string) *messages.Error {
	return messages.Errorf(messages.ErrNotFound, "%q", id)
}

// route forwards a request (msg, in its pointer form) to the box's actor,
// keeping the sender, or answers ErrNotFound.
func (r *rootSupervisor) route(ctx actor.Context, id string, msg any) {
	if r.gone[id] != nil {
		ctx.Respond(messages.BoxStatus{ID: id, Err: notFound(id)})
		return
	}
	if pid, ok := r.children[id]; ok {
		ctx.RequestWithCustomSender(pid, msg, ctx.Sender())
		return
	}
	if st, ok := r.statuses[id]; ok && st.State == messages.StateFailed && r.gone[id] == nil {
		// Its actor was given up on after repeated panics. An explicit
		// request gives the box a new actor, which reloads and re-adopts.
		if box, err := r.core.home.Box(id); err == nil {
			if pid, err := r.spawnBox(ctx, id, box, false); err == nil {
				ctx.RequestWithCustomSender(pid, msg, ctx.Sender())
				return
			}
		}
	}
	ctx.Respond(messages.BoxStatus{ID: id, Err: notFound(id)})
}

func (r *rootSupervisor) onBootListed(ctx actor.Context, m *bootListed) {
	if m.err != nil {
		r.core.log.WithError(m.err).Error("listing boxes at boot failed")
	}
	for _, id := range m.ids {
		box, err := r.core.home.Box(id)
		if err != nil {
			continue
		}
		if _, err := r.spawnBox(ctx, id, box, false); err != nil {
			r.core.log.WithError(err).WithField("box_id", id).Error("spawning box actor at boot failed")
			continue
		}
		r.booting[id] = true
	}
	r.checkBooted(ctx.Self())
}

func (r *rootSupervisor) checkBooted(self *actor.PID) {
	if r.booted || len(r.booting) > 0 {
		return
	}
	r.booted = true
	for _, w := range r.bootWaiters {
		r.core.root.Send(w, &bootDone{boxes: len(r.statuses)})
	}
	r.bootWaiters = nil
	for _, d := range r.deferred {
		r.core.root.RequestWithCustomSender(self, d.msg, d.sender)
	}
	r.deferred = nil
}

// pointerForm returns a request of package messages sent by value as its
// pointer form, the one the root and the box actors handle, so that either
// form is answered; anything else is returned as it is.
func pointerForm(msg any) any {
	switch m := msg.(type) {
	case messages.StartBox:
		return &m
	case messages.StartExisting:
		return &m
	case messages.Stop:
		return &m
	case messages.Kill:
		return &m
	case messages.SignalBox:
		return &m
	case messages.Remove:
		return &m
	case messages.Adopt:
		return &m
	case messages.UpdateBox:
		return &m
	case messages.StatusRequest:
		return &m
	case messages.MetricsRequest:
		return &m
	case messages.ListRequest:
		return &m
	case messages.MetricsAllRequest:
		return &m
	}
	return msg
}

// isRequest reports whether msg is a caller's request (as opposed to the
// root's own bookkeeping), i.e. one to hold back until the boot reconcile
// is complete.
func isRequest(msg any) bool {
	switch msg.(type) {
	case *messages.StartBox, *messages.StartExisting, *messages.Stop, *messages.Kill, *messages.SignalBox, *messages.Remove,
		*messages.Adopt, *messages.UpdateBox, *messages.StatusRequest, *messages.MetricsRequest, *messages.ListRequest,
		*messages.MetricsAllRequest, *stopAll, *cancelStart, *injectPanic:
		return true
	}
	return false
}

func (r *rootSupervisor) onStatus(ctx actor.Context, m *statusChanged) {
	if _, gone := r.gone[m.status.ID]; gone {
		return
	}
	r.statuses[m.status.ID] = m.status
	delete(r.newDetached, m.status.ID)
	if r.booting[m.status.ID] {
		delete(r.booting, m.status.ID)
		r.checkBooted(ctx.Self())
	}
}

// onTerminated forgets a child actor that stopped. For a box that is gone
// for good (removed, or never created) this is when its callers hear so.
func (r *rootSupervisor) onTerminated(ctx actor.Context, m *actor.Terminated) {
	for id, pid := range r.children {
		if !pid.Equal(m.Who) {
			continue
		}
		delete(r.children, id)
		delete(r.newDetached, id)
		if g, ok := r.gone[id]; ok {
			r.finishGone(ctx, g)
		}
		if r.booting[id] {
			delete(r.booting, id)
			r.checkBooted(ctx.Self())
		}
		return
	}
}

// onGone stops a box actor that ended its box for good; its callers are
// answered once it has terminated and its name is free again.
func (r *rootSupervisor) onGone(ctx actor.Context, m *boxGone) {
	pid, alive := r.children[m.id]
	if !alive {
		r.finishGone(ctx, m)
		return
	}
	if prev := r.gone[m.id]; prev != nil {
		m.replies = append(prev.replies, m.replies...)
	}
	r.gone[m.id] = m
	// Poison, not Stop: requests already queued for the actor are answered
	// (ErrNotFound) before it stops, where Stop would drop them unanswered.
	ctx.Poison(pid)
}

// finishGone forgets the box and answers the callers who waited for its end.
func (r *rootSupervisor) finishGone(ctx actor.Context, g *boxGone) {
	delete(r.gone, g.id)
	delete(r.statuses, g.id)
	r.core.dropEntry(g.id)
	for _, rep := range g.replies {
		ctx.Send(rep.to, rep.status)
	}
}

// spawnBox starts the box actor for id as a child named by the ID.
func (r *rootSupervisor) spawnBox(ctx actor.Context, id string, box layout.Box, fresh bool) (*actor.PID, error) {
	e := r.core.entry(id, box)
	e.mu.Lock()
	e.fresh = fresh
	e.mu.Unlock()
	props := actor.PropsFromProducer(func() actor.Actor { return newBoxActor(r.core, e) })
	pid, err := ctx.SpawnNamed(props, id)
	if err != nil {
		return nil, err
	}
	r.children[id] = pid
	return pid, nil
}

func (r *rootSupervisor) onStart(ctx actor.Context, m *messages.StartBox) {
	req := *m
	if err := r.core.validateStart(&req); err != nil {
		// StartBox sent straight to the root is checked like the facade's
		// Start: bad input leaves no trace.
		ctx.Respond(messages.BoxStatus{ID: messages.ScrubSecrets(m.ID, m.Spec.SecretValues()), Err: messages.AsError(err)})
		return
	}
	if _, ok := r.children[m.ID]; ok {
		ctx.Respond(messages.BoxStatus{ID: m.ID, Err: messages.Errorf(messages.ErrAlreadyExists, "%q", m.ID)})
		return
	}
	if _, ok := r.statuses[m.ID]; ok {
		ctx.Respond(messages.BoxStatus{ID: m.ID, Err: messages.Errorf(messages.ErrAlreadyExists, "%q (failed; remove it first)", m.ID)})
		return
	}
	box, err := r.core.home.Box(m.ID)
	if err != nil {
		ctx.Respond(messages.BoxStatus{ID: m.ID, Err: messages.AsError(err)})
		return
	}
	pid, err := r.spawnBox(ctx, m.ID, box, true)
	if err != nil {
		ctx.Respond(messages.BoxStatus{ID: m.ID, Err: messages.Errorf(messages.ErrBusy, "%q is still shutting down; retry", m.ID)})
		return
	}
	r.newDetached[m.ID] = req.Detach
	ctx.RequestWithCustomSender(pid, &createBox{req: req}, ctx.Sender())
}

// list returns the cached statuses sorted by ID.
func (r *rootSupervisor) list() []messages.BoxStatus {
	out := make([]messages.BoxStatus, 0, len(r.statuses))
	for _, st := range r.statuses {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// childList returns the status of every box that has an actor, sorted by
// ID. A box whose new actor has not reported yet is listed as starting:
// its Start is under way.
func (r *rootSupervisor) childList() []messages.BoxStatus {
	out := make([]messages.BoxStatus, 0, len(r.children))
	for id := range r.children {
		st, ok := r.statuses[id]
		if !ok {
			st = messages.BoxStatus{ID: id, State: messages.StateStarting, Detached: r.newDetached[id]}
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// fanOut sends a request built by mk to every box of list it returns one for,
// through a short-lived aggregator actor that answers the original sender
// once every box replied or the timeout passed. The root never waits.
func (r *rootSupervisor) fanOut(ctx actor.Context, list []messages.BoxStatus, mk func(messages.BoxStatus) any, timeout time.Duration, stop bool) {
	var targets []fanTarget
	for _, st := range list {
		pid, ok := r.children[st.ID]
		if !ok {
			continue
		}
		if msg := mk(st); msg != nil && r.gone[st.ID] == nil {
			targets = append(targets, fanTarget{id: st.ID, pid: pid, msg: msg})
		}
	}
	replyTo := ctx.Sender()
	ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &aggregator{targets: targets, replyTo: replyTo, timeout: timeout, stop: stop}
	}))
}
