package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/nodeloss"
	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/messages"
)

// onTick advances the fence's clock, and starts what is due: a join while
// the member has no session, a scan of the cluster while it has one.
func (m *member) onTick(ctx actor.Context) {
	now := time.Now()
	if m.fence.Tick(now) == nodeloss.StartFence {
		m.log.WithField("fence", m.fence.String()).Error("the etcd lease may be lost: fencing the fail-over boxes (stopping them; they will run on another member)")
		m.startFence()
	}
	m.expireSubs(now)
	switch {
	case m.left:
	case m.session == nil && !m.joining && !m.fencing && m.fence.State() != nodeloss.Fencing && now.Sub(m.lastJoin) >= rejoinInterval:
		m.startJoin()
	case m.session != nil && m.reclaimed && !m.scanning && now.Sub(m.lastScan) >= m.scanInterval():
		m.startScan()
	}
}

// sessionOver ends the current session for this member: it holds no
// records any more and must join again (after fencing).
func (m *member) sessionOver() {
	m.session, m.reclaimed = nil, false
	m.owned = map[string]ownership.Record{}
}

// scanInterval is how often the member reads the cluster's records: a
// quarter of the lease TTL (at least 250 ms), which is also the most a
// fail-over is delayed by it.
func (m *member) scanInterval() time.Duration {
	if h := m.cfg.hooks; h != nil && h.scanInterval > 0 {
		return h.scanInterval
	}
	return max(m.timing.LeaseTTL/4, 250*time.Millisecond)
}

// startJoin joins the cluster in a helper: a new etcd session under this
// node's name, after revoking the previous one (if it still exists, its
// boxes were fenced already, or the member is starting).
func (m *member) startJoin() {
	m.joining, m.lastJoin = true, time.Now()
	self, root, store, cfg, old := m.self, m.core.root, m.store, m.cfg, m.ending
	m.ending = nil
	m.core.goHelper(func() {
		if old != nil {
			closeSession(old) // revoked: its records' owner is gone for everyone at once
		}
		ctx, cancel := context.WithTimeout(context.Background(), etcdOpTimeout)
		defer cancel()
		var sess *ownership.Session
		var mu sync.Mutex
		before := time.Now()
		s, err := store.Join(ctx, ownership.JoinOptions{
			Node: cfg.Node, Address: cfg.Advertise, TTL: cfg.Timing.LeaseTTL,
			OnLease: func(ev ownership.LeaseEvent) {
				mu.Lock()
				cur := sess
				mu.Unlock()
				if cur != nil { // renewals before Join returned are covered by validUntil below
					root.Send(self, &leaseEvent{lease: cur.Lease(), ev: ev})
				}
			},
		})
		if err == nil {
			mu.Lock()
			sess = s
			mu.Unlock()
			root.Send(self, &joinDone{session: s, validUntil: before.Add(s.TTL())})
			return
		}
		root.Send(self, &joinDone{err: err})
	})
}

func (m *member) onJoinDone(ctx actor.Context, d *joinDone) {
	m.joining = false
	if d.err != nil {
		entry := m.log.WithError(d.err)
		if errors.Is(d.err, messages.ErrAlreadyExists) {
			entry.Warn("cannot join yet: this node's name is held by a live session (a previous run of this member, whose lease expires within its TTL, or another host given the same name)")
		} else {
			entry.Warn("cannot join the cluster; retrying")
		}
		return
	}
	if m.left {
		s := d.session
		m.core.goHelper(func() { closeSession(s) })
		return
	}
	t := m.cfg.Timing
	t.LeaseTTL = d.session.TTL()
	if err := t.Validate(); err != nil {
		// etcd granted a longer TTL than asked (its minimum): the timing no
		// longer keeps two copies apart. Refuse to serve, loudly.
		m.log.WithError(err).Error("etcd granted a lease TTL under which fail-over is unsafe; not joining (raise --failover-after); trying again in a minute")
		s := d.session
		m.core.goHelper(func() { closeSession(s) })
		m.lastJoin = time.Now().Add(time.Minute - rejoinInterval)
		return
	}
	m.session, m.timing, m.joinedAt = d.session, t, time.Now()
	m.fence.Joined(d.validUntil)
	m.log.WithFields(map[string]any{"lease": d.session.Lease().String(), "ttl": d.session.TTL().String()}).Info("joined the cluster; reclaiming this member's boxes")
	m.startReclaim()
}

// startReclaim re-points this node's records of an earlier session to the
// current one, except those of boxes it fenced (they are left for another
// member to take over).
func (m *member) startReclaim() {
	sess, fenced := m.session, m.fenced
	m.core.goHelper(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*etcdOpTimeout)
		defer cancel()
		owned, err := sess.Reclaim(ctx, func(o ownership.Owned) bool { return !fenced.has(o.ID) })
		m.tell(&reclaimDone{session: sess, owned: owned, err: err})
	})
}

func (m *member) onReclaimDone(ctx actor.Context, d *reclaimDone) {
	if d.session != m.session {
		return // a session that ended meanwhile
	}
	if d.err != nil {
		m.log.WithError(d.err).Warn("reclaiming this member's ownership records failed; retrying")
		m.startReclaim() // paced by etcd's own timeout
		return
	}
	for _, o := range d.owned {
		m.owned[o.ID] = o.Record
		m.touch(o.ID)
	}
	m.reclaimed = true
	m.log.WithField("boxes", len(d.owned)).Info("member ready: boxes reclaimed")
	if ids := m.fenced.ids(); len(ids) > 0 {
		// Boxes fenced while etcd was out of reach: their records say so
		// now (a take-over then does not depend on this member answering).
		sess := m.session
		m.core.goHelper(func() {
			ctx, cancel := etcdCtx()
			defer cancel()
			if err := sess.MarkFenced(ctx, ids); err != nil {
				m.log.WithError(err).Debug("marking fenced boxes in etcd")
			}
		})
	}
	m.lastScan = time.Time{} // reconcile with the local boxes at the next tick
}

func (m *member) onLease(e *leaseEvent) {
	if m.session == nil || e.lease != m.session.Lease() {
		return
	}
	if e.ev.Gone {
		m.log.WithField("lease", e.lease.String()).Error("etcd says this member's lease is gone; taking no new box, fencing at the deadline")
		m.fence.Gone()
		return
	}
	m.fence.Renewed(e.ev.ValidUntil)
}

// startFence stops this member's live fail-over boxes, after recording them
// as fenced (so that nothing here starts them again, and the next session
// leaves their records for a take-over). Each stop gets the box's stop
// timeout capped at half the lease TTL; Stop kills the tree after it.
func (m *member) startFence() {
	if m.fencing {
		return
	}
	m.fencing = true
	var lease ownership.LeaseID
	if m.session != nil {
		lease = m.session.Lease()
	}
	timing := m.timing
	m.core.goHelper(func() {
		ids, errs := m.fenceBoxes(lease, timing)
		m.tell(&fenceDone{ids: ids, errs: errs})
	})
}

// fenceBoxes is the fence's work, on a helper goroutine. Eligibility comes
// from each box's own stored request, so that a member fences correctly
// even before it ever held a session (it cannot trust what it has not read
// from etcd).
func (m *member) fenceBoxes(lease ownership.LeaseID, timing nodeloss.Timing) (fenced, errs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), timing.LeaseTTL+killWait+5*time.Second)
	defer cancel()
	v, err := m.ask(ctx, &messages.ListRequest{})
	if err != nil {
		return nil, []string{fmt.Sprintf("listing boxes: %v", err)}
	}
	lr, _ := v.(*messages.ListResponse)
	if lr == nil {
		return nil, []string{fmt.Sprintf("listing boxes: unexpected reply %T", v)}
	}
	var targets []messages.BoxStatus
	for _, st := range lr.Boxes {
		if !st.State.Live() && st.State != messages.StateRestarting {
			continue
		}
		box, err := m.core.home.Box(st.ID)
		if err != nil {
			continue
		}
		var spec messages.StartBox
		m.core.withIO(func() { spec, err = box.ReadSpec() })
		if err != nil {
			// Without its request the box's choice is unknown: fencing it
			// is the safe side (a stopped box can be started again; two
			// copies cannot be undone).
			m.log.WithError(err).WithField("box_id", st.ID).Error("fencing a box whose stored request cannot be read")
		} else if p := spec.Placement; p == nil || !nodeloss.Eligible(p.Failover, placementKind(p.Kind)) {
			continue
		}
		targets = append(targets, st)
	}
	if len(targets) == 0 {
		return nil, nil
	}
	ids := make([]string, len(targets))
	for i, st := range targets {
		ids[i] = st.ID
	}
	if err := m.fenced.add(lease, ids...); err != nil {
		// The stops go ahead: not stopping could run a box twice; not
		// remembering can at worst leave a record to reclaim.
		errs = append(errs, fmt.Sprintf("recording the fence: %v", err))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, st := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := statusOf(m.ask(ctx, &messages.Stop{ID: st.ID, Timeout: timing.FenceGrace(st.StopTimeout)}))
			entry := m.log.WithField("box_id", st.ID)
			if err != nil && !errors.Is(err, messages.ErrNotFound) {
				entry.WithError(err).Error("fencing: stopping the box failed")
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s: %v", st.ID, err))
				mu.Unlock()
				return
			}
			entry.Warn("fenced: the box was stopped on this member")
		}()
	}
	wg.Wait()
	return ids, errs
}

func (m *member) onFenceDone(d *fenceDone) {
	m.fencing = false
	if m.fence.State() == nodeloss.Fencing {
		m.fence.FenceDone()
	}
	if len(d.errs) > 0 {
		m.log.WithField("errors", d.errs).Error("the fence did not stop every fail-over box")
	}
	if m.left {
		if m.leaveAsker != nil {
			// The records say the boxes were fenced before the lease goes:
			// the member taking them over need not ask this host, whose
			// supervisor will not answer any more.
			asker, sess, left := m.leaveAsker, m.session, &memberLeft{session: m.session, errs: d.errs}
			m.leaveAsker = nil
			m.core.goHelper(func() {
				if sess != nil && len(d.ids) > 0 {
					ctx, cancel := etcdCtx()
					if err := sess.MarkFenced(ctx, d.ids); err != nil {
						m.log.WithError(err).Warn("the fenced boxes could not be marked so in etcd: their fail-over waits until this host is unreachable or its member answers")
					}
					cancel()
				}
				m.core.root.Send(asker, left)
			})
		}
		return
	}
	if m.fence.State() == nodeloss.Fenced && m.session != nil {
		// The session is over for this member whatever etcd says: the next
		// one starts with a revoke of this one, so that nobody waits for it.
		m.ending = m.session
		m.sessionOver()
	}
}

// closeSession ends a session that will not be used, within a bound.
func closeSession(s *ownership.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), etcdOpTimeout)
	defer cancel()
	s.Close(ctx)
}
