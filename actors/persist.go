package actors

import (
	"sync"
	"time"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// persister writes one box's state.json off the actor goroutine. It belongs
// to the box's entry, not to an actor incarnation: a write in flight when
// the actor restarts is neither lost nor raced by the next incarnation,
// which starts from the newest record (latest), written or not.
//
// The actor hands it numbered records and goes on. A write of record n makes
// every earlier one moot, so writes coalesce and a slow disk never queues
// more than one write per box. Each landed write is acknowledged with a
// lifecycle.Persisted carrying the highest number on disk. A failed write
// (a full disk) is reported once per record, so that whoever waits for that
// record hears of the failure (a Stop is answered with ErrPersist beside its
// final status rather than not at all), and retried with backoff until it
// lands or the persister is closed: nothing the actor decided is dropped,
// and a record still pending at close is written before close returns.
type persister struct {
	box layout.Box
	io  func(func()) // runs blocking I/O in a bounded slot

	mu       sync.Mutex
	inc      uint64                // the incarnation acknowledgements go to
	ack      func(lifecycle.Event) // delivers one to it
	latest   *messages.StateRecord
	next     *messages.StateRecord // newest record not yet written
	nextSeq  uint64
	nextInc  uint64
	running  bool
	closed   bool
	dropped  bool // closed for a removed box: nothing more is written
	wake     chan struct{}
	wg       sync.WaitGroup
	failures int
	// lastTried: the attempt made after close (the last one) has begun.
	lastTried bool
	// failedInc and failedSeq name the last record whose failure was
	// reported: its retries are not reported again.
	failedInc, failedSeq uint64
}

// Bounds of the retry backoff after a failed write.
const (
	persistRetryMin = 100 * time.Millisecond
	persistRetryMax = 5 * time.Second
)

func newPersister(box layout.Box, io func(func())) *persister {
	return &persister{box: box, io: io, wake: make(chan struct{}, 1)}
}

// attach makes incarnation inc of the box actor the receiver of
// acknowledgements, through ack. Acknowledgements of records an earlier
// incarnation submitted are not sent to it (its record numbers start
// afresh).
func (p *persister) attach(inc uint64, ack func(lifecycle.Event)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inc, p.ack = inc, ack
}

// latestRecord returns the newest record submitted, written or not.
func (p *persister) latestRecord() (messages.StateRecord, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latest == nil {
		return messages.StateRecord{}, false
	}
	return *p.latest, true
}

// submit queues rec as record seq of incarnation inc. It never blocks.
func (p *persister) submit(inc, seq uint64, rec messages.StateRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := rec
	p.latest = &r
	if p.closed {
		return
	}
	p.next, p.nextSeq, p.nextInc = &r, seq, inc
	select {
	case p.wake <- struct{}{}: // cut a retry's wait short: newer news
	default:
	}
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
		rec, seq, inc := p.next, p.nextSeq, p.nextInc
		if rec == nil || p.closed && (p.lastTried || p.dropped) {
			// Nothing left, or closed and the last attempt made: a closed
			// writer tries once more to land what it was given (a refusal
			// may have passed), but does not go on retrying (and writes
			// nothing for a removed box).
			p.running = false
			p.mu.Unlock()
			return
		}
		p.lastTried = p.closed
		p.next = nil
		p.mu.Unlock()

		var err error
		p.io(func() { err = p.box.WriteState(*rec) })

		p.mu.Lock()
		if err != nil && p.next == nil {
			p.next, p.nextSeq, p.nextInc = rec, seq, inc // retry it, unless a newer one came
		}
		failures := p.failures
		report := true
		if err != nil {
			p.failures++
			// A failure is reported once per record: a retry of the same
			// record is not news, a newer record failing is (its waiters
			// are answered with the failure). The landing write is always
			// reported.
			report = p.failedInc != inc || p.failedSeq != seq
			p.failedInc, p.failedSeq = inc, seq
		} else {
			p.failures = 0
			p.failedInc, p.failedSeq = 0, 0
		}
		target, ack, closed := p.inc, p.ack, p.closed
		p.mu.Unlock()

		if target == inc && ack != nil && report && !closed {
			ack(lifecycle.Persisted{Seq: seq, Err: err})
		}
		if err != nil && !closed {
			p.backoff(failures)
		}
	}
}

// backoff waits before retrying a failed write: doubling from 100 ms to 5 s,
// cut short by a newer record or by close.
func (p *persister) backoff(failures int) {
	d := persistRetryMin
	for i := 0; i < failures && d < persistRetryMax; i++ {
		d *= 2
	}
	t := time.NewTimer(min(d, persistRetryMax))
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.wake:
	}
}

// close stops the writer once the newest record submitted has been written
// (one more attempt, even after failures, but no retries: a disk that
// keeps refusing must not hold up a shutdown); the goroutine has returned
// when close does. It reports whether a record was left unwritten (the
// caller says so).
func (p *persister) close() (lost bool) {
	p.mu.Lock()
	p.closed = true
	select {
	case p.wake <- struct{}{}: // cut a retry's backoff short
	default:
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next != nil || p.failures > 0
}

// drop stops the writer of a box that was removed: a pending record is
// moot (its directory is gone) and is not written.
func (p *persister) drop() {
	p.mu.Lock()
	p.dropped = true
	p.mu.Unlock()
	p.close()
}
