package actors

import (
	"reflect"
	"sync"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// eventLog numbers the supervisor's events and keeps the latest of them
// (Config.EventHistory) for subscriptions that ask for a replay
// (EventFilter.Since). Publishing holds its lock from numbering to the end
// of the event stream's delivery, so the numbers, the history and every
// subscriber's queue have one order, and a subscription taken under the
// same lock splits the events exactly: those before it are in the history,
// those after reach its queue.
type eventLog struct {
	mu   sync.Mutex
	seq  uint64
	size int
	// ring holds the latest min(size, published) events, oldest at head.
	ring []messages.Event
	head int
	// begin is where the history begins: when the supervisor started, or
	// the time of the newest event that left the ring.
	begin   time.Time
	evicted int
}

func newEventLog(size int, begin time.Time) *eventLog {
	return &eventLog{size: max(size, 0), begin: begin}
}

// publish numbers ev, keeps it and hands it to deliver (the event stream),
// all under the lock.
func (l *eventLog) publish(ev messages.Event, deliver func(messages.Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	ev = numbered(ev, l.seq)
	l.keep(ev)
	deliver(ev)
}

func (l *eventLog) keep(ev messages.Event) {
	if l.size == 0 {
		l.evict(ev)
		return
	}
	if len(l.ring) < l.size {
		l.ring = append(l.ring, ev)
		return
	}
	l.evict(l.ring[l.head])
	l.ring[l.head] = ev
	l.head = (l.head + 1) % l.size
}

func (l *eventLog) evict(ev messages.Event) {
	l.evicted++
	if at := ev.Header().At; at.After(l.begin) {
		l.begin = at
	}
}

// replay returns, in order, the kept events at or after since (zero: all)
// that filter selects, preceded by an EventsLagged when since reaches
// before the history begins (zero: when events left it). The caller holds
// l.mu.
func (l *eventLog) replay(home string, filter EventFilter, since time.Time) []messages.Event {
	var out []messages.Event
	if (!since.IsZero() && since.Before(l.begin)) || (since.IsZero() && l.evicted > 0) {
		out = append(out, messages.EventsLagged{EventHeader: messages.EventHeader{Home: home, At: l.begin}, Dropped: l.evicted})
	}
	for i := range len(l.ring) {
		ev := l.ring[(l.head+i)%len(l.ring)]
		if (since.IsZero() || !ev.Header().At.Before(since)) && filter.match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// numbered returns ev with its header's Seq set. Events are values that
// embed messages.EventHeader; reflection sets the field on a copy, so an
// event type added later is numbered too.
func numbered(ev messages.Event, seq uint64) messages.Event {
	v := reflect.ValueOf(ev)
	if v.Kind() != reflect.Struct {
		return ev
	}
	cp := reflect.New(v.Type()).Elem()
	cp.Set(v)
	f := cp.FieldByName("Seq")
	if !f.IsValid() || f.Kind() != reflect.Uint64 || !f.CanSet() {
		return ev
	}
	f.SetUint(seq)
	out, ok := cp.Interface().(messages.Event)
	if !ok {
		return ev
	}
	return out
}

// EventHistory returns the events the supervisor still holds (the latest
// Config.EventHistory of them) that filter selects, in order, from
// filter.Since on (a zero Since: all of them). When Since reaches before
// the history begins (a zero Since: when events have left it), the first
// element is a messages.EventsLagged whose At says where it begins. It is what a Subscribe with the same filter
// replays before its live events.
func (s *Supervisor) EventHistory(filter EventFilter) []messages.Event {
	l := s.core.events
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.replay(s.core.home.Root, filter, filter.Since)
}
