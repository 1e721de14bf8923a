package actors

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sort"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/cluster/nodeloss"
	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/cluster/placement"
	"github.com/boxsup/boxsup/cluster/remoting"
	"github.com/boxsup/boxsup/messages"
)

// startScan reads, in a helper, the cluster's records and members and this
// member's boxes: what reconciliation and fail-over decide on.
func (m *member) startScan() {
	m.scanning, m.lastScan = true, time.Now()
	epoch, store := m.epoch, m.store
	m.core.goHelper(func() {
		d := &scanDone{epoch: epoch}
		ctx, cancel := etcdCtx()
		defer cancel()
		// etcd first: a box created after this reading is in the local
		// list, or changed in the door since epoch; never judged stale.
		if d.owned, d.err = store.List(ctx); d.err == nil {
			d.members, d.err = store.Members(ctx)
		}
		if d.err == nil {
			var v any
			if v, d.err = m.ask(ctx, &messages.ListRequest{}); d.err == nil {
				if lr, ok := v.(*messages.ListResponse); ok {
					d.local = lr.Boxes
				}
			}
		}
		m.tell(d)
	})
}

func (m *member) onScanDone(d *scanDone) {
	m.scanning = false
	if d.err != nil {
		m.log.WithError(d.err).Debug("reading the cluster failed")
		return
	}
	if m.session == nil || m.left {
		return
	}
	now := time.Now()
	live := map[string]ownership.Member{}
	for _, mb := range d.members {
		live[mb.Node] = mb
		p := m.peers[mb.Node]
		if p == nil {
			p = &peer{}
			m.peers[mb.Node] = p
		}
		p.address, p.alive, p.lastSeen = mb.Address, true, now
	}
	for node, p := range m.peers {
		if _, ok := live[node]; !ok {
			p.alive = false
		}
	}
	leases := map[ownership.LeaseID]bool{}
	for _, o := range d.owned {
		leases[o.Record.Lease] = true
		m.failover.Observe(int64(o.Record.Lease), o.OwnerAlive, now)
	}
	for _, l := range m.knownLeases {
		if !leases[l] {
			m.failover.Forget(int64(l))
		}
	}
	m.knownLeases = m.knownLeases[:0]
	for l := range leases {
		m.knownLeases = append(m.knownLeases, l)
	}

	local := map[string]messages.BoxStatus{}
	for _, st := range d.local {
		local[st.ID] = st
	}
	recorded := map[string]bool{}
	settled := func(id string) bool {
		_, pending := m.pending[id]
		_, releasing := m.releasing[id]
		return !pending && !releasing && !m.busy[id] && m.changed[id] <= d.epoch
	}
	counts := map[string]int{}
	for _, o := range d.owned {
		recorded[o.ID] = true
		counts[o.Record.Node]++
		if !settled(o.ID) {
			continue
		}
		st, here := local[o.ID]
		switch {
		case o.Record.Node == m.cfg.Node && o.Record.Lease == m.session.Lease():
			if here {
				m.owned[o.ID] = o.Record
			} else {
				m.owned[o.ID] = o.Record
				m.startRelease(o.ID) // removed while etcd was out of reach
			}
		case o.Record.Node != m.cfg.Node && here:
			m.supersede(o, st)
		case o.Record.Node != m.cfg.Node && !o.OwnerAlive:
			m.considerTakeover(o, live, counts, now)
		}
	}
	for id, st := range local {
		if !recorded[id] && settled(id) {
			m.claimLocal(id, st)
		}
	}
}

// supersede handles a local box whose record another member holds: it
// failed over while this member was cut off, or is a leftover. This copy
// must not run: it is stopped if it does, and never started again here.
func (m *member) supersede(o ownership.Owned, st messages.BoxStatus) {
	delete(m.owned, o.ID)
	if !st.State.Live() && st.State != messages.StateRestarting {
		return
	}
	entry := m.log.WithFields(map[string]any{"box_id": o.ID, "owner": o.Record.Node, "epoch": o.Record.Epoch})
	entry.Error("a box owned by another member runs here too: stopping this copy")
	id := o.ID
	m.busy[id] = true
	m.core.goHelper(func() {
		ctx, cancel := context.WithTimeout(context.Background(), killWait+time.Minute)
		defer cancel()
		_, err := statusOf(m.ask(ctx, &messages.Stop{ID: id, Timeout: m.timing.FenceGrace(st.StopTimeout)}))
		if err != nil {
			entry.WithError(err).Error("stopping a superseded copy failed")
		}
		m.tell(&startReplied{id: id, err: nil})
	})
}

// claimLocal records a local box that has no record (a box of the home
// from before it joined, or whose record was lost), as owned here, with the
// placement its stored request says.
func (m *member) claimLocal(id string, st messages.BoxStatus) {
	m.busy[id] = true
	sess := m.session
	m.core.goHelper(func() {
		opts := ownership.ClaimOptions{Placement: placement.Node}
		if box, err := m.core.home.Box(id); err == nil {
			var spec messages.StartBox
			m.core.withIO(func() { spec, err = box.ReadSpec() })
			if err == nil && spec.Placement != nil && !m.fenced.has(id) {
				opts.Placement = placementKind(spec.Placement.Kind)
				if spec.Placement.Failover && len(spec.Spec.SecretValues()) == 0 {
					opts.Failover = true
					opts.Spec, _ = json.Marshal(spec)
				}
			}
		}
		ctx, cancel := etcdCtx()
		defer cancel()
		rec, err := sess.ClaimBox(ctx, id, opts)
		m.tell(&localClaimed{id: id, st: st, rec: rec, err: err})
	})
}

// localClaimed reports claimLocal.
type localClaimed struct {
	id  string
	st  messages.BoxStatus
	rec ownership.Record
	err error
}

func (m *member) onLocalClaimed(c *localClaimed) {
	delete(m.busy, c.id)
	m.touch(c.id)
	switch {
	case c.err == nil:
		m.owned[c.id] = c.rec
		m.log.WithField("box_id", c.id).Info("recorded a box of this home as owned by this member")
	case errors.Is(c.err, messages.ErrAlreadyExists):
		// Another member claimed the ID between the readings: the next
		// scan sees its record and supersedes this copy.
	default:
		m.log.WithError(c.err).WithField("box_id", c.id).Debug("recording a box of this home failed; retried at the next scan")
	}
}

// considerTakeover re-places a fail-over box of a lost member, when the
// timing allows and placement names this member.
func (m *member) considerTakeover(o ownership.Owned, live map[string]ownership.Member, counts map[string]int, now time.Time) {
	eligible := nodeloss.Eligible(o.Record.Failover, o.Record.Placement)
	verdict, _ := m.failover.Decide(int64(o.Record.Lease), eligible, now)
	if verdict != nodeloss.Replace || m.accepting(now) != nil {
		return
	}
	var cands []placement.Member
	for node := range live {
		cands = append(cands, placement.Member{Node: node, Boxes: counts[node]})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].Node < cands[j].Node })
	kind := o.Record.Placement
	if kind != placement.Hash {
		kind = placement.Spread
	}
	chosen, err := placement.Choose(placement.Placement{Kind: kind}, o.ID, cands, o.Record.Node)
	if err != nil || chosen != m.cfg.Node {
		return
	}
	m.busy[o.ID] = true
	m.touch(o.ID)
	sess := m.session
	m.core.goHelper(func() {
		d := &takeoverDone{id: o.ID}
		d.rec, d.req, d.err = m.takeOver(sess, o)
		m.tell(d)
	})
}

// errOldHostAnswers: the old owner's host still answers, so its boxes may
// run: no fail-over (docs/CLUSTER.md, "Crash of the supervisor itself").
var errOldHostAnswers = errors.New("the old owner's host answers")

// takeOver asks the old owner's host first, then reads the box's spec and
// takes its record over in etcd (one transaction that checks the old lease
// is gone).
func (m *member) takeOver(sess *ownership.Session, o ownership.Owned) (ownership.Record, messages.StartBox, error) {
	var req messages.StartBox
	if err := m.oldOwnerLetsGo(o); err != nil {
		return ownership.Record{}, req, err
	}
	ctx, cancel := etcdCtx()
	defer cancel()
	spec, err := m.store.Spec(ctx, o.ID)
	if err != nil {
		return ownership.Record{}, req, err
	}
	if err := json.Unmarshal(spec, &req); err != nil || req.ID != o.ID {
		return ownership.Record{}, req, messages.Errorf(messages.ErrCorruptFile, "the spec kept in etcd for box %q does not decode", o.ID)
	}
	rec, err := sess.TakeOver(ctx, o)
	return rec, req, err
}

// oldOwnerLetsGo decides whether the old owner's host may still run the
// box. A record marked fenced (its owner stopped the box, and said so
// before its lease went: a member that left) lets go at once. Otherwise
// the lease is gone, so its supervisor is lost; if it was the network or
// the host, the fence has stopped the box there (the timing argument). If
// only the supervisor died, its detached shims still run and nothing
// fenced them: a host that refuses the connection (up, nobody listening) or
// whose member says the box is live is left alone. Only a host that cannot
// be reached, or whose member says the box is at rest or absent, lets go.
func (m *member) oldOwnerLetsGo(o ownership.Owned) error {
	if o.Record.Fenced {
		return nil // its owner fenced it, and said so before its lease went
	}
	addr := o.Record.Address
	if addr == "" {
		if p := m.peers[o.Record.Node]; p != nil {
			addr = p.address
		}
	}
	if addr == "" {
		return nil // never seen: nothing to ask
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return errOldHostAnswers
		}
		return nil // unreachable: cut off or down, and fenced by the timing
	}
	_ = conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	v, err := remoting.Request(ctx, m.core.system, remoting.RootOf(addr), &messages.StatusRequest{ID: o.ID}, 3*time.Second)
	if errors.Is(err, messages.ErrNotFound) {
		return nil
	}
	if err != nil {
		return errOldHostAnswers
	}
	if st, ok := v.(*messages.BoxStatus); ok && (st.State.AtRest() || st.Err != nil && errors.Is(st.Err, messages.ErrNotFound)) {
		return nil
	}
	return errOldHostAnswers
}

func (m *member) onTakeoverDone(d *takeoverDone) {
	entry := m.log.WithField("box_id", d.id)
	if d.err != nil {
		delete(m.busy, d.id)
		m.touch(d.id)
		switch {
		case errors.Is(d.err, errOldHostAnswers):
			if !m.warned[d.id] {
				m.warned[d.id] = true
				entry.Warn("not failing over: the old owner's lease is gone but its host still answers, so the box may still run there")
			}
		case errors.Is(d.err, ownership.ErrChanged), errors.Is(d.err, ownership.ErrOwnerAlive):
			entry.WithError(d.err).Info("fail-over not needed: the record changed")
		default:
			entry.WithError(d.err).Warn("fail-over failed; retried at a later scan")
		}
		return
	}
	delete(m.warned, d.id)
	m.owned[d.id] = d.rec
	m.touch(d.id)
	entry.WithField("epoch", d.rec.Epoch).Warn("took over a fail-over box of a lost member; starting it here")
	req := d.req
	p := messages.Placement{Kind: messages.PlaceSpread, Failover: true}
	if req.Placement != nil {
		p = *req.Placement
	}
	p.Node = m.cfg.Node
	req.Placement = &p
	id := d.id
	m.core.goHelper(func() {
		ctx, cancel := context.WithTimeout(context.Background(), m.core.cfg.RequestTimeout)
		defer cancel()
		// A copy of the box may be at rest here from an earlier time it
		// lived on this member: the new one replaces it.
		st, err := statusOf(m.ask(ctx, &messages.StatusRequest{ID: id}))
		if err == nil {
			if st.State.Live() || st.State == messages.StateRestarting {
				_, err = statusOf(m.ask(ctx, &messages.Stop{ID: id}))
			}
			if err == nil {
				_, err = statusOf(m.ask(ctx, &messages.Remove{ID: id, Force: true}))
			}
		}
		if err == nil || errors.Is(err, messages.ErrNotFound) {
			_, err = statusOf(m.ask(ctx, &req))
		}
		if err != nil {
			entry.WithError(err).Error("the box taken over did not start")
		} else {
			entry.Info("the box taken over runs here")
		}
		m.tell(&startReplied{id: id})
	})
}
