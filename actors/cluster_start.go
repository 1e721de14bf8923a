package actors

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/messages"
)

// respond answers a caller of the door with a BoxStatus.
func (m *member) respond(to *actor.PID, st messages.BoxStatus) {
	if to != nil {
		m.core.root.Send(to, st)
	}
}

// onStart claims a new box's ownership record in etcd before the root
// creates it: a box ID is unique cluster-wide, and a member that may have
// lost its lease takes no new box.
func (m *member) onStart(ctx actor.Context, req messages.StartBox) {
	sender := ctx.Sender()
	if err := m.core.validateStart(&req); err != nil {
		m.respond(sender, messages.BoxStatus{ID: messages.ScrubSecrets(req.ID, req.Spec.SecretValues()), Err: messages.AsError(err)})
		return
	}
	p := messages.Placement{Kind: messages.PlaceNode}
	if req.Placement != nil {
		p = *req.Placement
	}
	p.Node = m.cfg.Node
	req.Placement = &p
	id := req.ID
	if err := m.accepting(time.Now()); err != nil {
		m.respond(sender, messages.BoxStatus{ID: id, Err: messages.AsError(err)})
		return
	}
	if _, ok := m.releasing[id]; ok {
		// The record of a removed box of that ID is being released: the
		// start follows the release.
		m.releasing[id] = append(m.releasing[id], deferredRequest{msg: &req, sender: sender})
		return
	}
	if _, ok := m.pending[id]; ok || m.busy[id] {
		m.respond(sender, messages.BoxStatus{ID: id, Err: messages.Errorf(messages.ErrAlreadyExists, "%q (a start of it is in progress)", id)})
		return
	}
	opts := ownership.ClaimOptions{Failover: p.Failover, Placement: placementKind(p.Kind)}
	if p.Failover {
		// What another member starts after a take-over; checkPlacement
		// refused a request with secrets, so none is written to etcd.
		spec, err := json.Marshal(req)
		if err != nil {
			m.respond(sender, messages.BoxStatus{ID: id, Err: messages.AsError(err)})
			return
		}
		opts.Spec = spec
	}
	m.pending[id] = &pendingStart{msg: &req, sender: sender}
	m.busy[id] = true
	m.touch(id)
	sess := m.session
	m.core.goHelper(func() {
		ctx, cancel := etcdCtx()
		defer cancel()
		rec, err := sess.ClaimBox(ctx, id, opts)
		m.tell(&claimDone{id: id, rec: rec, err: err})
	})
}

func (m *member) onClaimDone(ctx actor.Context, d *claimDone) {
	p := m.pending[d.id]
	delete(m.pending, d.id)
	if p == nil {
		return
	}
	if d.err != nil {
		delete(m.busy, d.id)
		m.respond(p.sender, messages.BoxStatus{ID: d.id, Err: ownershipError(d.err)})
		return
	}
	m.owned[d.id] = d.rec
	m.touch(d.id)
	if p.cancelled {
		m.respond(p.sender, messages.BoxStatus{ID: d.id, Err: messages.Errorf(messages.ErrShuttingDown, "the start of %q was cancelled", d.id)})
		m.startRelease(d.id)
		return
	}
	id, sender := d.id, p.sender
	relay := m.newRelay(func(reply any) {
		if sender != nil {
			m.core.root.Send(sender, reply)
		}
		m.tell(&startReplied{id: id, err: statusErr(reply)})
	})
	m.core.root.RequestWithCustomSender(m.root, p.msg, relay)
}

// onStartReplied ends a start. One that failed and left no box releases
// its claim (a box that failed to start but exists keeps it, until it is
// removed).
func (m *member) onStartReplied(r *startReplied) {
	delete(m.busy, r.id)
	m.touch(r.id)
	if r.err == nil || errors.Is(r.err, messages.ErrAlreadyExists) {
		return
	}
	id := r.id
	m.busy[id] = true
	m.core.goHelper(func() {
		ctx, cancel := etcdCtx()
		defer cancel()
		_, err := statusOf(m.ask(ctx, &messages.StatusRequest{ID: id}))
		m.tell(&startChecked{id: id, gone: errors.Is(err, messages.ErrNotFound)})
	})
}

// startChecked says whether a box whose start failed exists.
type startChecked struct {
	id   string
	gone bool
}

func (m *member) onStartChecked(c *startChecked) {
	delete(m.busy, c.id)
	if c.gone {
		m.startRelease(c.id)
	}
}

// onCancelStart cancels a start whose caller gave up while its claim is in
// flight; any other cancellation is the box actor's.
func (m *member) onCancelStart(ctx actor.Context, c *cancelStart) {
	if p, ok := m.pending[c.id]; ok && p.sender != nil && p.sender.Equal(c.caller) {
		p.cancelled = true
		return
	}
	ctx.Forward(m.root)
}

// onStartExisting starts a box at rest again: only one whose record this
// member's live session holds, and only while it takes boxes.
func (m *member) onStartExisting(ctx actor.Context, id string) {
	sender := ctx.Sender()
	rec, ok := m.owned[id]
	if ok && m.session != nil && rec.Lease == m.session.Lease() {
		if err := m.accepting(time.Now()); err != nil {
			m.respond(sender, messages.BoxStatus{ID: id, Err: messages.AsError(err)})
			return
		}
		ctx.Forward(m.root)
		return
	}
	fenced, node := m.fenced.has(id), m.cfg.Node
	relay := m.newRelay(func(reply any) {
		err := statusErr(reply)
		switch {
		case errors.Is(err, messages.ErrNotFound), errors.Is(err, messages.ErrInvalidID):
			m.respond(sender, messages.BoxStatus{ID: id, Err: messages.AsError(err)})
		case fenced:
			m.respond(sender, messages.BoxStatus{ID: id, Err: messages.Errorf(messages.ErrUnavailable,
				"box %q was fenced when member %s lost its etcd lease: it fails over to another member, and is not started here again (remove this copy to drop it)", id, node)})
		default:
			m.respond(sender, messages.BoxStatus{ID: id, Err: messages.Errorf(messages.ErrUnavailable,
				"box %q is not owned by member %s in the cluster right now (it failed over to another member, or this member is still joining)", id, node)})
		}
	})
	m.core.root.RequestWithCustomSender(m.root, &messages.StatusRequest{ID: id}, relay)
}

// onUpdate passes an update to the root; for a fail-over box the spec kept
// in etcd is then replaced, so that a take-over starts it as updated.
func (m *member) onUpdate(ctx actor.Context, u *messages.UpdateBox) {
	rec, ok := m.owned[u.ID]
	if !ok || !rec.Failover {
		ctx.Forward(m.root)
		return
	}
	sender, id, sess := ctx.Sender(), u.ID, m.session
	relay := m.newRelay(func(reply any) {
		if sender != nil {
			m.core.root.Send(sender, reply)
		}
		if statusErr(reply) != nil || sess == nil {
			return
		}
		box, err := m.core.home.Box(id)
		if err != nil {
			return
		}
		var spec messages.StartBox
		m.core.withIO(func() { spec, err = box.ReadSpec() })
		if err == nil {
			var b []byte
			if b, err = json.Marshal(spec); err == nil {
				ctx, cancel := etcdCtx()
				err = sess.PutSpec(ctx, id, b)
				cancel()
			}
		}
		if err != nil {
			m.log.WithError(err).WithField("box_id", id).Warn("the updated settings of a fail-over box are not in etcd: a take-over would start it with the previous ones")
		}
	})
	m.core.root.RequestWithCustomSender(m.root, u, relay)
}

// onBoxRemoved releases the record of a box removed here.
func (m *member) onBoxRemoved(id string) {
	fenced := m.fenced
	m.core.goHelper(func() {
		if err := fenced.remove(id); err != nil {
			m.log.WithError(err).WithField("box_id", id).Warn("forgetting a removed box's fence")
		}
	})
	if _, ok := m.owned[id]; !ok || m.busy[id] {
		return
	}
	m.startRelease(id)
}

// startRelease deletes a box's record (and kept spec). Starts of the same
// ID wait for it.
func (m *member) startRelease(id string) {
	sess := m.session
	if sess == nil {
		return // the next session's scan releases it
	}
	if _, ok := m.releasing[id]; !ok {
		m.releasing[id] = nil
	}
	m.busy[id] = true
	m.touch(id)
	m.core.goHelper(func() {
		ctx, cancel := etcdCtx()
		defer cancel()
		// A box of that ID exists here again (a take-over replaced an old
		// copy, whose removal was reported late): its record stays.
		if _, err := statusOf(m.ask(ctx, &messages.StatusRequest{ID: id})); !errors.Is(err, messages.ErrNotFound) {
			m.tell(&releaseDone{id: id, kept: true})
			return
		}
		err := sess.Release(ctx, id)
		if errors.Is(err, messages.ErrNotFound) || errors.Is(err, ownership.ErrNotOwner) {
			err = nil // nothing of ours to release
		}
		m.tell(&releaseDone{id: id, err: err})
	})
}

func (m *member) onReleaseDone(ctx actor.Context, d *releaseDone) {
	delete(m.busy, d.id)
	m.touch(d.id)
	waiting := m.releasing[d.id]
	delete(m.releasing, d.id)
	switch {
	case d.kept:
	case d.err != nil:
		m.log.WithError(d.err).WithField("box_id", d.id).Warn("releasing the box's ownership record failed; it is retried")
	default:
		delete(m.owned, d.id)
	}
	for _, w := range waiting {
		ctx.RequestWithCustomSender(ctx.Self(), w.msg, w.sender)
	}
}
