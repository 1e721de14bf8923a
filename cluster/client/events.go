package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"reflect"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/remoting"
	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// Pacing of an events subscription across the cluster.
const (
	subLease      = 30 * time.Second
	subRenewEvery = 10 * time.Second
	// subCheckEvery is how often the member list is read again: a member
	// that joined, or came back, is subscribed to within it.
	subCheckEvery = 2 * time.Second
	subBuffer     = 4096
)

// eventInbox receives one subscription's envelopes from every member.
type eventInbox struct {
	mu     sync.Mutex
	queue  []messages.Event
	lagged int
	wake   chan struct{}
}

func (in *eventInbox) SendUserMessage(_ *actor.PID, message any) {
	env, ok := actor.UnwrapEnvelopeMessage(message).(*wire.Envelope)
	if !ok {
		return
	}
	msg, err := wire.Decode(env)
	if err != nil {
		return
	}
	ev, ok := asEventValue(msg)
	if !ok {
		return // the acknowledgement, or a refusal
	}
	in.mu.Lock()
	if len(in.queue) >= subBuffer {
		in.queue = in.queue[1:]
		in.lagged++
	}
	in.queue = append(in.queue, ev)
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}
func (in *eventInbox) SendSystemMessage(*actor.PID, any) {}
func (in *eventInbox) Stop(*actor.PID)                   {}

// asEventValue turns a decoded event (a pointer) into the value the
// supervisor publishes, so that consumers switch on the same types.
func asEventValue(msg any) (messages.Event, bool) {
	v := reflect.ValueOf(msg)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, false
	}
	ev, ok := v.Elem().Interface().(messages.Event)
	return ev, ok
}

// Events implements control.Backend: fn receives the events sel selects
// from every member, each member's in order (no order holds across
// members), until ctx ends. Members that join later, or come back, are
// subscribed to within a few seconds; events of a member that was
// unreachable meanwhile are lost, as a member's subscriber that falls too
// far behind is told by an EventsLagged.
func (c *Client) Events(ctx context.Context, sel control.Selection, fn func(messages.Event)) error {
	if _, err := labels.Parse(sel.Labels); err != nil {
		return err
	}
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	sub := &messages.EventsSubscribe{Subscription: hex.EncodeToString(b), Boxes: sel.Boxes, Kinds: sel.Kinds, Labels: sel.Labels, Lease: subLease}
	env, err := wire.Encode(sub)
	if err != nil {
		return err
	}
	in := &eventInbox{wake: make(chan struct{}, 1)}
	reg := c.system.ProcessRegistry
	pid, _ := reg.Add(in, "boxsup-events-"+reg.NextId())
	defer reg.Remove(pid)

	done := make(chan struct{})
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for {
			select {
			case <-in.wake:
			case <-done:
				return
			}
			for {
				in.mu.Lock()
				batch, lagged := in.queue, in.lagged
				in.queue, in.lagged = nil, 0
				in.mu.Unlock()
				if len(batch) == 0 {
					break
				}
				if lagged > 0 {
					fn(messages.EventsLagged{Dropped: lagged})
				}
				for _, ev := range batch {
					fn(ev)
				}
			}
		}
	}()
	defer func() { close(done); <-delivered }()

	renewed := map[string]time.Time{}
	subscribe := func() {
		members, err := c.members(ctx)
		if err != nil {
			return // etcd out of reach: the subscriptions held go on
		}
		now := time.Now()
		for _, m := range members {
			c.mu.Lock()
			lostAt, lost := c.lost[m.Address]
			c.mu.Unlock()
			last, ok := renewed[m.Address]
			if ok && now.Sub(last) < subRenewEvery && !(lost && lostAt.After(last)) {
				continue
			}
			c.system.Root.RequestWithCustomSender(remoting.RootOf(m.Address), env, pid)
			renewed[m.Address] = now
		}
	}
	subscribe()
	t := time.NewTicker(subCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if unsub, err := wire.Encode(&messages.EventsUnsubscribe{Subscription: sub.Subscription}); err == nil {
				for addr := range renewed {
					c.system.Root.RequestWithCustomSender(remoting.RootOf(addr), unsub, pid)
				}
			}
			return ctx.Err()
		case <-t.C:
			subscribe()
		}
	}
}
