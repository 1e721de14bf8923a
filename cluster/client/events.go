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
	// historyWait bounds a history-only read (an Until already past): a
	// member that has not sent its end by then is left out.
	historyWait = 30 * time.Second
)

// queued is one event and the member it came from.
type queued struct {
	node string
	ev   messages.Event
}

// eventQueue is what every member's inbox of one subscription feeds, and
// one goroutine delivers: fn is never called concurrently.
type eventQueue struct {
	mu     sync.Mutex
	queue  []queued
	lagged int
	ended  map[string]bool // members that sent the end of a history-only read
	wake   chan struct{}
}

func (q *eventQueue) push(it queued) {
	q.mu.Lock()
	if len(q.queue) >= subBuffer {
		q.queue = q.queue[1:]
		q.lagged++
	}
	q.queue = append(q.queue, it)
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) end(node string) {
	q.mu.Lock()
	q.ended[node] = true
	q.mu.Unlock()
	q.signal()
}

func (q *eventQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// memberInbox receives one member's envelopes for a subscription.
type memberInbox struct {
	node string
	sub  string
	q    *eventQueue
}

func (in *memberInbox) SendUserMessage(_ *actor.PID, message any) {
	env, ok := actor.UnwrapEnvelopeMessage(message).(*wire.Envelope)
	if !ok {
		return
	}
	msg, err := wire.Decode(env)
	if err != nil {
		return
	}
	if u, ok := msg.(*messages.EventsUnsubscribe); ok && u.Subscription == in.sub {
		in.q.end(in.node)
		return
	}
	if ev, ok := asEventValue(msg); ok {
		in.q.push(queued{node: in.node, ev: ev})
	}
}
func (in *memberInbox) SendSystemMessage(*actor.PID, any) {}
func (in *memberInbox) Stop(*actor.PID)                   {}

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
// members), until ctx ends or sel.Until comes. sel.Since replays each
// member's history from then on first; an Until already past reads that
// history only. Members that join later, or come back, are subscribed to
// within a few seconds, from the last event seen of them (a member's
// events are numbered: none is delivered twice); events a member no longer
// holds in its history are announced by an EventsLagged.
func (c *Client) Events(ctx context.Context, sel control.Selection, fn func(messages.Event)) error {
	if _, err := labels.Parse(sel.Labels); err != nil {
		return err
	}
	b := make([]byte, 8)
	_, _ = crand.Read(b)
	base := messages.EventsSubscribe{Subscription: hex.EncodeToString(b), Boxes: sel.Boxes, Kinds: sel.Kinds,
		Labels: sel.Labels, Lease: subLease, Since: sel.Since, Until: sel.Until}
	historyOnly := !sel.Until.IsZero() && !sel.Until.After(time.Now())
	q := &eventQueue{wake: make(chan struct{}, 1), ended: map[string]bool{}}
	reg := c.system.ProcessRegistry

	type memberSub struct {
		pid     *actor.PID
		address string
		renewed time.Time
		lastSeq uint64
		lastAt  time.Time
	}
	var mu sync.Mutex // guards subs' lastSeq and lastAt, set by the delivery goroutine
	subs := map[string]*memberSub{}
	defer func() {
		unsub, err := wire.Encode(&messages.EventsUnsubscribe{Subscription: base.Subscription})
		for _, s := range subs {
			if err == nil && !historyOnly {
				c.system.Root.RequestWithCustomSender(remoting.RootOf(s.address), unsub, s.pid)
			}
			reg.Remove(s.pid)
		}
	}()

	done := make(chan struct{})
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for {
			select {
			case <-q.wake:
			case <-done:
				return
			}
			for {
				q.mu.Lock()
				batch, lagged := q.queue, q.lagged
				q.queue, q.lagged = nil, 0
				q.mu.Unlock()
				if len(batch) == 0 {
					break
				}
				if lagged > 0 {
					fn(messages.EventsLagged{Dropped: lagged})
				}
				for _, it := range batch {
					h := it.ev.Header()
					mu.Lock()
					s := subs[it.node]
					dup := s != nil && h.Seq > 0 && h.Seq <= s.lastSeq
					if s != nil && !dup && h.Seq > 0 {
						s.lastSeq, s.lastAt = h.Seq, h.At
					}
					mu.Unlock()
					_, marker := it.ev.(messages.EventsLagged)
					if dup || (!sel.Until.IsZero() && !marker && h.At.After(sel.Until)) {
						continue
					}
					fn(it.ev)
				}
			}
		}
	}()
	defer func() { close(done); <-delivered }()

	subscribe := func() int {
		members, err := c.members(ctx)
		if err != nil {
			return -1 // etcd out of reach: the subscriptions held go on
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range members {
			s := subs[m.Node]
			if s == nil {
				s = &memberSub{address: m.Address}
				s.pid, _ = reg.Add(&memberInbox{node: m.Node, sub: base.Subscription, q: q}, "boxsup-events-"+reg.NextId())
				subs[m.Node] = s
			}
			c.mu.Lock()
			lostAt, lost := c.lost[m.Address]
			c.mu.Unlock()
			moved := s.address != m.Address
			if !s.renewed.IsZero() && now.Sub(s.renewed) < subRenewEvery && !moved && !(lost && lostAt.After(s.renewed)) {
				continue
			}
			req := base
			if (moved || lost) && !s.lastAt.IsZero() {
				req.Since = s.lastAt // resume: what was seen is dropped by its number
			}
			s.address = m.Address
			if env, err := wire.Encode(&req); err == nil {
				c.system.Root.RequestWithCustomSender(remoting.RootOf(m.Address), env, s.pid)
				s.renewed = now
			}
		}
		return len(members)
	}
	asked := subscribe()

	if historyOnly {
		t := time.NewTimer(historyWait)
		defer t.Stop()
		for {
			q.mu.Lock()
			n := len(q.ended)
			q.mu.Unlock()
			if asked >= 0 && n >= asked {
				// Every member sent its end: what came before it is queued,
				// and delivered before the deferred stop ends the delivery.
				drainQueue(ctx, q)
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return messages.Errorf(messages.ErrTimeout, "%d of %d members sent their event history within %s", n, asked, historyWait)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	var untilC <-chan time.Time
	if !sel.Until.IsZero() {
		t := time.NewTimer(time.Until(sel.Until))
		defer t.Stop()
		untilC = t.C
	}
	tick := time.NewTicker(subCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-untilC:
			return nil
		case <-tick.C:
			subscribe()
		}
	}
}

// drainQueue waits (polling, briefly) until the delivery goroutine has
// taken every queued event, or ctx ends.
func drainQueue(ctx context.Context, q *eventQueue) {
	for ctx.Err() == nil {
		q.mu.Lock()
		empty := len(q.queue) == 0
		q.mu.Unlock()
		if empty {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
