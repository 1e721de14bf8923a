package actors

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// Bounds of a remote events subscription's lease.
const (
	defaultSubLease = 30 * time.Second
	minSubLease     = 5 * time.Second
	maxSubLease     = 5 * time.Minute
)

// remoteSub is one subscriber (usually on another host) of this member's
// events.
type remoteSub struct {
	to      *actor.PID
	cancel  func()
	expires time.Time
}

// receiveRemoteSub handles a subscription request that came in an
// envelope: the subscriber is the remote sender itself.
func (m *member) receiveRemoteSub(ctx actor.Context, msg any) {
	switch s := msg.(type) {
	case *messages.EventsSubscribe:
		m.onSubscribe(ctx, s)
	case *messages.EventsUnsubscribe:
		m.onUnsubscribe(ctx, s)
	}
}

// sendEnvelope sends msg to pid in a wire envelope (what any subscriber of
// this door expects, local or not).
func (m *member) sendEnvelope(pid *actor.PID, msg any) {
	if env, err := wire.Encode(msg); err == nil {
		m.core.root.Send(pid, env)
	}
}

// onSubscribe starts (or renews) a subscription; the acknowledgement is the
// request itself, then every event follows, each in an envelope.
func (m *member) onSubscribe(ctx actor.Context, s *messages.EventsSubscribe) {
	to := ctx.Sender()
	if to == nil {
		return
	}
	if m.left {
		m.sendEnvelope(to, messages.Errorf(messages.ErrShuttingDown, "member %s is leaving the cluster", m.cfg.Node))
		return
	}
	lease := s.Lease
	switch {
	case lease == 0:
		lease = defaultSubLease
	case lease < minSubLease:
		lease = minSubLease
	case lease > maxSubLease:
		lease = maxSubLease
	}
	key := subKey(to, s.Subscription)
	if cur, ok := m.subs[key]; ok {
		cur.expires = time.Now().Add(lease)
		m.sendEnvelope(to, s)
		return
	}
	sel, err := labels.Parse(s.Labels)
	if err != nil {
		m.sendEnvelope(to, messages.AsError(err))
		return
	}
	filter := EventFilter{Boxes: s.Boxes, Kinds: s.Kinds, Labels: sel, Since: s.Since}
	if !s.Until.IsZero() && !s.Until.After(time.Now()) {
		// History only: sent from here in order, then the end.
		for _, ev := range m.sup.EventHistory(filter) {
			if _, marker := ev.(messages.EventsLagged); marker || !ev.Header().At.After(s.Until) {
				m.sendEnvelope(to, ev)
			}
		}
		m.sendEnvelope(to, &messages.EventsUnsubscribe{Subscription: s.Subscription})
		return
	}
	send := m.sendEnvelope
	cancel := m.sup.subs.add(filter, func(ev messages.Event) { send(to, ev) })
	m.subs[key] = &remoteSub{to: to, cancel: cancel, expires: time.Now().Add(lease)}
	m.sendEnvelope(to, s)
}

func (m *member) onUnsubscribe(ctx actor.Context, u *messages.EventsUnsubscribe) {
	if to := ctx.Sender(); to != nil {
		m.dropSub(subKey(to, u.Subscription))
	}
}

func subKey(to *actor.PID, sub string) string {
	return to.GetAddress() + "/" + to.GetId() + "/" + sub
}

func (m *member) dropSub(key string) {
	if s, ok := m.subs[key]; ok {
		s.cancel()
		delete(m.subs, key)
	}
}

// expireSubs ends subscriptions whose lease passed unrenewed.
func (m *member) expireSubs(now time.Time) {
	for key, s := range m.subs {
		if now.After(s.expires) {
			m.dropSub(key)
		}
	}
}

// onEndpointLost ends the subscriptions of a peer remote lost: it is
// unknown, not dead, but nothing would reach it; it subscribes again.
func (m *member) onEndpointLost(address string) {
	for key, s := range m.subs {
		if s.to.GetAddress() == address {
			m.dropSub(key)
		}
	}
}

// onLeave starts leaving the cluster (Shutdown): no new box, no
// subscriber, and the fail-over boxes fenced, because once this member's
// lease is gone another member may start them.
func (m *member) onLeave(ctx actor.Context) {
	m.left = true
	for key := range m.subs {
		m.dropSub(key)
	}
	m.leaveAsker = ctx.Sender()
	if !m.fencing {
		m.startFence()
	}
}

// onNodeInfo answers with what this member is: the door's own view now,
// then the box counts from the root and the host's memory.
func (m *member) onNodeInfo(ctx actor.Context) {
	now := time.Now()
	info := messages.NodeInfo{Cluster: m.cfg.Name, Node: m.cfg.Node, Address: m.cfg.Advertise, Fence: string(m.fence.State())}
	if m.session == nil && m.joinedAt.IsZero() {
		info.Fence = "joining"
	}
	if err := m.accepting(now); err != nil {
		info.Refusal = err.Error()
	} else {
		info.Accepting = true
	}
	for node, p := range m.peers {
		if node == m.cfg.Node {
			continue
		}
		ps := messages.PeerSeen{Node: node, Alive: p.alive}
		if !p.alive {
			ps.Unseen = now.Sub(p.lastSeen)
		}
		info.Peers = append(info.Peers, ps)
	}
	sort.Slice(info.Peers, func(i, j int) bool { return info.Peers[i].Node < info.Peers[j].Node })
	sender := ctx.Sender()
	relay := m.newRelay(func(reply any) {
		if lr, ok := reply.(*messages.ListResponse); ok {
			info.Boxes = len(lr.Boxes)
			for _, st := range lr.Boxes {
				if st.State.Live() || st.State == messages.StateRestarting {
					info.LiveBoxes++
				}
			}
		}
		m.core.withIO(func() { info.MemTotalBytes, info.MemAvailableBytes = readMeminfo() })
		if sender != nil {
			m.core.root.Send(sender, &info)
		}
	})
	m.core.root.RequestWithCustomSender(m.root, &messages.ListRequest{}, relay)
}

// readMeminfo returns MemTotal and MemAvailable in bytes (zero when
// unreadable).
func readMeminfo() (total, available uint64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "MemTotal":
			total = kb << 10
		case "MemAvailable":
			available = kb << 10
		}
	}
	return total, available
}

// onInspect answers an InspectRequest with Supervisor.Inspect, assembled
// (and the spec redacted) on a helper goroutine: it reads the box's files.
func (m *member) onInspect(ctx actor.Context, id string) {
	sender, sup := ctx.Sender(), m.sup
	if sender == nil {
		return
	}
	m.core.goHelper(func() {
		ictx, cancel := context.WithTimeout(context.Background(), m.core.cfg.RequestTimeout)
		defer cancel()
		in, err := sup.Inspect(ictx, id)
		if err != nil {
			m.core.root.Send(sender, messages.AsError(err))
			return
		}
		m.core.root.Send(sender, &in)
	})
}
