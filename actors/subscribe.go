package actors

import (
	"bytes"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// EventFilter selects the events a subscriber receives. Empty fields select
// everything.
type EventFilter struct {
	// Boxes lists box IDs.
	Boxes []string
	// Kinds lists event kinds ("BoxReady", "BoxExited", ...).
	Kinds []string
	// Labels selects by the box's labels (labels.Parse("app=web")).
	Labels labels.Selector
	// Since, when not zero, makes Subscribe first deliver the events of
	// the supervisor's history (Config.EventHistory) from Since on, then
	// the live ones, with no gap and no duplicate between the two (see
	// EventHistory, whose EventsLagged marker comes first when Since
	// reaches before the history).
	Since time.Time
}

func (f EventFilter) match(ev messages.Event) bool {
	return (len(f.Boxes) == 0 || slices.Contains(f.Boxes, ev.Box())) &&
		(len(f.Kinds) == 0 || slices.Contains(f.Kinds, ev.Kind())) &&
		f.Labels.Matches(ev.Header().Labels)
}

// subscriberBuffer is how many events a subscriber may fall behind before
// the oldest are dropped (and an EventsLagged tells it so).
const subscriberBuffer = 4096

// Subscribe calls fn for every lifecycle event of this supervisor that
// filter selects (messages.BoxStarted, BoxReady, BoxExited, BoxRestarting,
// BoxAdopted, BoxFailed, BoxRemoved), in order, on a goroutine of its own: a
// slow callback delays its own events, never an actor or another
// subscriber. A subscriber that falls more than 4096 events behind loses the
// oldest and first receives a messages.EventsLagged saying how many.
// Supervisors sharing an actor system never see each other's events.
// With filter.Since set, the events of the history from then on come
// first (see EventFilter.Since); their EventHeader.Seq continue without a
// gap into the live ones.
//
// The returned cancel stops delivery and waits for a callback in progress,
// except when it is called from the callback itself, where it returns at
// once (no callback follows).
func (s *Supervisor) Subscribe(filter EventFilter, fn func(messages.Event)) (cancel func()) {
	return s.subs.add(filter, fn)
}

// subscribers delivers events from the event stream to callbacks through
// one bounded queue and goroutine each.
type subscribers struct {
	stream *eventstream.EventStream
	home   string
	log    *eventLog
	mu     sync.Mutex
	all    map[*subscriber]struct{}
}

type subscriber struct {
	fn     func(messages.Event)
	filter EventFilter
	sub    *eventstream.Subscription
	mu     sync.Mutex
	replay []messages.Event // the history asked for (Since), delivered first
	queue  []messages.Event
	lagged int // events dropped since the last delivery
	wake   chan struct{}
	closed chan struct{}
	done   chan struct{}
	goid   uint64 // the delivery goroutine
	once   sync.Once
}

func (ss *subscribers) init(sys *actor.ActorSystem, home string, log *eventLog) {
	ss.stream = sys.EventStream
	ss.home = home
	ss.log = log
	ss.all = map[*subscriber]struct{}{}
}

func (ss *subscribers) add(filter EventFilter, fn func(messages.Event)) func() {
	s := &subscriber{fn: fn, filter: filter, wake: make(chan struct{}, 1), closed: make(chan struct{}), done: make(chan struct{})}
	home := ss.home
	subscribe := func() {
		s.sub = ss.stream.Subscribe(func(evt any) {
			if ev, ok := evt.(messages.Event); ok && ev.Header().Home == home && filter.match(ev) {
				s.enqueue(ev)
			}
		})
	}
	if filter.Since.IsZero() {
		subscribe()
	} else {
		// No event can be published between the snapshot of the history
		// and the subscription: both happen under the log's lock.
		ss.log.mu.Lock()
		subscribe()
		s.replay = ss.log.replay(home, filter, filter.Since)
		ss.log.mu.Unlock()
	}
	ss.mu.Lock()
	ss.all[s] = struct{}{}
	ss.mu.Unlock()
	started := make(chan struct{})
	go s.run(started)
	<-started
	var once sync.Once
	return func() {
		once.Do(func() {
			ss.mu.Lock()
			delete(ss.all, s)
			ss.mu.Unlock()
			s.close(ss.stream)
		})
	}
}

// inCallback reports whether the calling goroutine is delivering events.
func (ss *subscribers) inCallback() bool {
	id := goroutineID()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for s := range ss.all {
		if s.goid == id {
			return true
		}
	}
	return false
}

func (ss *subscribers) closeAll() {
	ss.mu.Lock()
	all := ss.all
	ss.all = map[*subscriber]struct{}{}
	ss.mu.Unlock()
	for s := range all {
		s.close(ss.stream)
	}
}

func (s *subscriber) enqueue(ev messages.Event) {
	s.mu.Lock()
	if len(s.queue) >= subscriberBuffer {
		s.queue = s.queue[1:]
		s.lagged++
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run(started chan<- struct{}) {
	defer close(s.done)
	s.goid = goroutineID()
	close(started)
	replay := s.replay
	s.replay = nil
	for _, ev := range replay {
		select {
		case <-s.closed:
			return
		default:
		}
		s.fn(ev)
	}
	for {
		select {
		case <-s.wake:
		case <-s.closed:
			return
		}
		for {
			s.mu.Lock()
			batch, lagged := s.queue, s.lagged
			s.queue, s.lagged = nil, 0
			s.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			if lagged > 0 {
				s.fn(messages.EventsLagged{Dropped: lagged})
			}
			for _, ev := range batch {
				select {
				case <-s.closed:
					return
				default:
				}
				s.fn(ev)
			}
		}
	}
}

// close stops delivery; Shutdown and the caller's cancel may both call it.
// It waits for a callback in progress unless called from one.
func (s *subscriber) close(stream *eventstream.EventStream) {
	s.once.Do(func() {
		stream.Unsubscribe(s.sub)
		close(s.closed)
	})
	if goroutineID() == s.goid {
		return // from the callback itself: it cannot wait for itself
	}
	<-s.done
}

// goroutineID returns the calling goroutine's id, parsed from the first
// line of its stack ("goroutine 42 [running]:"). It is used only to refuse
// calls that would wait for themselves, never for control flow otherwise.
func goroutineID() uint64 {
	var buf [32]byte
	n := runtime.Stack(buf[:], false)
	b := bytes.TrimPrefix(buf[:n], []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
