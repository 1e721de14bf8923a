package actors

import (
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// persister writes a box's state.json off the actor goroutine. The actor
// hands it numbered records; a write of record n makes every record before n
// obsolete, so writes coalesce and a slow disk never queues more than one
// write per box. Each write is acknowledged to the actor with a persisted
// message carrying the highest sequence number now on disk.
type persister struct {
	box  layout.Box
	io   func(func()) // runs blocking I/O in a bounded slot
	inc  uint64
	root *actor.RootContext
	self *actor.PID

	mu      sync.Mutex
	next    *messages.StateRecord // latest record not yet written
	nextSeq uint64
	running bool
	wg      sync.WaitGroup
}

func newPersister(box layout.Box, io func(func()), inc uint64, root *actor.RootContext, self *actor.PID) *persister {
	return &persister{box: box, io: io, inc: inc, root: root, self: self}
}

// submit queues rec as sequence seq. It never blocks on I/O.
func (p *persister) submit(seq uint64, rec messages.StateRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := rec
	p.next, p.nextSeq = &r, seq
	if !p.running {
		p.running = true
		p.wg.Add(1)
		go p.drain()
	}
}

// drain writes the newest pending record until none is left.
func (p *persister) drain() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		rec, seq := p.next, p.nextSeq
		p.next = nil
		if rec == nil {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		var err error
		p.io(func() { err = p.box.WriteState(*rec) })
		p.root.Send(p.self, &persisted{inc: p.inc, seq: seq, err: err})
	}
}

// wait blocks until no write is in flight. Used when an actor incarnation
// ends, so the next one reads what this one wrote.
func (p *persister) wait() { p.wg.Wait() }
