package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/boxsup/boxsup/messages"
)

// Subscribe calls fn for every lifecycle event (messages.BoxStarted,
// BoxReady, BoxExited, BoxRestarting, BoxAdopted, BoxFailed, BoxRemoved), in
// order, on a goroutine of its own: a slow callback delays its own events,
// never an actor. The returned cancel stops delivery and waits for a
// callback in progress.
func (s *Supervisor) Subscribe(fn func(messages.Event)) (cancel func()) {
	return s.subs.add(fn)
}

// subscribers delivers events from the event stream to callbacks through
// one unbounded queue and goroutine each.
type subscribers struct {
	stream *eventstream.EventStream
	mu     sync.Mutex
	all    map[*subscriber]struct{}
}

type subscriber struct {
	fn     func(messages.Event)
	sub    *eventstream.Subscription
	mu     sync.Mutex
	queue  []messages.Event
	wake   chan struct{}
	closed chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (ss *subscribers) init(sys *actor.ActorSystem) {
	ss.stream = sys.EventStream
	ss.all = map[*subscriber]struct{}{}
}

func (ss *subscribers) add(fn func(messages.Event)) func() {
	s := &subscriber{fn: fn, wake: make(chan struct{}, 1), closed: make(chan struct{}), done: make(chan struct{})}
	s.sub = ss.stream.Subscribe(func(evt any) {
		if ev, ok := evt.(messages.Event); ok {
			s.enqueue(ev)
		}
	})
	ss.mu.Lock()
	ss.all[s] = struct{}{}
	ss.mu.Unlock()
	go s.run()
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
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.done)
	for {
		select {
		case <-s.wake:
		case <-s.closed:
			return
		}
		for {
			s.mu.Lock()
			batch := s.queue
			s.queue = nil
			s.mu.Unlock()
			if len(batch) == 0 {
				break
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
func (s *subscriber) close(stream *eventstream.EventStream) {
	s.once.Do(func() {
		stream.Unsubscribe(s.sub)
		close(s.closed)
	})
	<-s.done
}
