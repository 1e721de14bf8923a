package health

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Deliver receives the result of one probe of box boxID's generation gen.
// It is called on a worker goroutine of the Scheduler: concurrently for
// different boxes, one at a time and in the order the probes ran for one
// box. It must not block (hand the result over, e.g. send it to the box's
// actor); it may call the Scheduler.
type Deliver func(boxID string, gen uint64, r messages.HealthResult)

// Options size a Scheduler. Zero fields take the defaults.
type Options struct {
	// NetworkWorkers bounds the tcp, http and unix probes running at once
	// (default max(16, 4×GOMAXPROCS)). A worker waiting on a socket holds
	// a goroutine and a file descriptor, not a thread; the bound is on
	// those, and it is wide enough that a few boxes whose probes hang until
	// their timeout do not hold up everyone else's.
	NetworkWorkers int
	// ExecWorkers bounds the exec probes running at once (default
	// max(4, GOMAXPROCS)). Each forks, and holds a thread while its command
	// runs.
	ExecWorkers int
}

func (o Options) withDefaults() Options {
	if o.NetworkWorkers <= 0 {
		o.NetworkWorkers = max(16, 4*runtime.GOMAXPROCS(0))
	}
	if o.ExecWorkers <= 0 {
		o.ExecWorkers = max(4, runtime.GOMAXPROCS(0))
	}
	return o
}

// maxFirstDelay bounds the random delay before a check's first probe (and
// its first after Resume): boxes added together (a supervisor adopting its
// boxes, a file of boxes applied) spread their probes over it, and a box
// whose start waits for its first pass is probed within it.
const maxFirstDelay = time.Second

// Job is one box generation's check, as Scheduler.Add takes it.
type Job struct {
	BoxID string
	Gen   uint64
	// Check is the box's check; it must be valid (Supported). Zero
	// settings take the defaults.
	Check messages.HealthCheck
	// Target is where the probes go. (Embedded: no field of this package
	// is named after a value that holds a spec, so that the logging
	// patrol, which goes by names, flags nothing else.)
	Target
	// Since is when the generation's checks began, from which the start
	// period runs: when the shim signalled ready, or for an adopted box
	// the generation's start. Zero means now.
	Since time.Time
}

// Scheduler runs the health checks of many boxes: one timer per box, a
// fixed pool of workers for network probes and a smaller one for exec
// probes, each box's probes one at a time (the next starts Interval after
// the previous ended, or StartInterval during the start period), the
// first after a random delay below a second. Results go to the Deliver
// function.
//
// While no box has a check it costs nothing: no goroutine, no timer. The
// workers start with the first Add and end when the last check is
// removed. Close stops everything and waits for it. The methods are safe
// for concurrent use.
type Scheduler struct {
	deliver Deliver
	opts    Options
	clock   clock
	probe   func(context.Context, *messages.HealthCheck, Target) messages.HealthResult
	jitter  func(limit time.Duration) time.Duration

	mu      sync.Mutex
	entries map[string]*entry
	pool    *pool // nil while there are no entries
	closed  bool
	workers sync.WaitGroup // every worker ever started
}

// NewScheduler returns a Scheduler that delivers results to deliver.
func NewScheduler(deliver Deliver, opts Options) *Scheduler {
	return newScheduler(deliver, opts, realClock{}, Probe, randomJitter)
}

func newScheduler(deliver Deliver, opts Options, c clock,
	probe func(context.Context, *messages.HealthCheck, Target) messages.HealthResult,
	jitter func(time.Duration) time.Duration) *Scheduler {
	return &Scheduler{deliver: deliver, opts: opts.withDefaults(), clock: c, probe: probe, jitter: jitter,
		entries: map[string]*entry{}}
}

func randomJitter(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// entryState is where a box's check is between probes.
type entryState uint8

const (
	stateIdle   entryState = iota // paused: nothing pending
	stateArmed                    // its timer is pending
	stateQueued                   // due, waiting for a worker
	stateBusy                     // a worker probes it or delivers its result
)

// entry is one box's check. It holds its target (and the spec) only in
// the closure run, so that nothing else here holds a spec.
type entry struct {
	boxID   string
	gen     uint64
	check   messages.HealthCheck // with defaults
	since   time.Time
	run     func(context.Context) messages.HealthResult // one probe of the box
	lane    *lane
	state   entryState
	paused  bool
	removed bool
	passed  bool   // a probe of this generation passed: the start period is over
	seq     uint64 // bumped by Pause and Resume: a timer or probe of an older seq is stale
	timer   stopper
	cancel  context.CancelFunc // of the probe in flight
}

// pool is the workers that serve the entries while there are some.
type pool struct {
	network, exec lane
	stop          bool
}

// lane is the queue of due entries of one kind of probe, and its workers'
// condition.
type lane struct {
	queue []*entry
	cond  *sync.Cond
}

// Add starts the checks of job's box generation, replacing the box's
// previous ones (another generation's, or the same). It fails with
// messages.ErrShuttingDown after Close, and with messages.ErrBadSpec for an
// invalid check.
func (s *Scheduler) Add(job Job) error {
	if err := job.Check.Validate(); err != nil {
		return err
	}
	job.Check = job.Check.WithDefaults()
	if job.Since.IsZero() {
		job.Since = s.clock.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return messages.Errorf(messages.ErrShuttingDown, "health checks of box %s: the scheduler is closed", job.BoxID)
	}
	if old := s.entries[job.BoxID]; old != nil {
		s.dropLocked(old)
	}
	if s.pool == nil {
		s.startPoolLocked()
	}
	check, target, probe := job.Check, job.Target, s.probe
	e := &entry{boxID: job.BoxID, gen: job.Gen, check: check, since: job.Since, lane: &s.pool.network,
		run: func(ctx context.Context) messages.HealthResult { return probe(ctx, &check, target) }}
	if check.Kind() == messages.HealthExec {
		e.lane = &s.pool.exec
	}
	s.entries[job.BoxID] = e
	s.armFirstLocked(e)
	return nil
}

// Remove ends the checks of box boxID, whatever its generation: a probe in
// flight is cancelled and its result dropped. No result of the box is
// delivered after Remove returns, except one whose delivery had begun.
func (s *Scheduler) Remove(boxID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[boxID]; e != nil {
		s.removeLocked(e)
	}
}

// Pause stops probing box boxID's generation gen (a box that is stopping,
// or whose process cannot be verified) and keeps its check: a probe in
// flight is cancelled and its result dropped. It reports whether the box
// has that generation's check.
func (s *Scheduler) Pause(boxID string, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[boxID]
	if e == nil || e.gen != gen {
		return false
	}
	if e.paused {
		return true
	}
	e.paused = true
	e.seq++
	switch e.state {
	case stateArmed:
		e.timer.Stop()
		e.state = stateIdle
	case stateQueued:
		e.lane.queue = slices.DeleteFunc(e.lane.queue, func(q *entry) bool { return q == e })
		e.state = stateIdle
	case stateBusy:
		e.cancel() // the worker leaves it idle
	}
	return true
}

// Resume probes a paused generation again, after a random delay below a
// second. It reports whether the box has that generation's check.
func (s *Scheduler) Resume(boxID string, gen uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[boxID]
	if e == nil || e.gen != gen {
		return false
	}
	if !e.paused {
		return true
	}
	e.paused = false
	e.seq++
	if e.state == stateIdle {
		s.armFirstLocked(e)
	} // else a worker holds it, and arms it when it is done
	return true
}

// Close removes every check, cancels the probes in flight and waits until
// every worker has ended. Add fails afterwards.
func (s *Scheduler) Close() {
	s.mu.Lock()
	s.closed = true
	for _, e := range s.entries {
		s.removeLocked(e)
	}
	s.mu.Unlock()
	s.workers.Wait()
}

// removeLocked drops e and stops the workers when it was the last entry.
func (s *Scheduler) removeLocked(e *entry) {
	s.dropLocked(e)
	if len(s.entries) == 0 && s.pool != nil {
		s.pool.stop = true
		s.pool.network.cond.Broadcast()
		s.pool.exec.cond.Broadcast()
		s.pool = nil
	}
}

// dropLocked ends e's timer, queue place or probe in flight, and forgets it.
func (s *Scheduler) dropLocked(e *entry) {
	e.removed = true
	switch e.state {
	case stateArmed:
		e.timer.Stop()
	case stateQueued:
		e.lane.queue = slices.DeleteFunc(e.lane.queue, func(q *entry) bool { return q == e })
	case stateBusy:
		e.cancel()
	}
	delete(s.entries, e.boxID)
}

func (s *Scheduler) startPoolLocked() {
	p := &pool{}
	p.network.cond = sync.NewCond(&s.mu)
	p.exec.cond = sync.NewCond(&s.mu)
	s.pool = p
	for _, l := range []struct {
		lane *lane
		n    int
	}{{&p.network, s.opts.NetworkWorkers}, {&p.exec, s.opts.ExecWorkers}} {
		for range l.n {
			s.workers.Add(1)
			go s.work(p, l.lane)
		}
	}
}

// armFirstLocked schedules e's first probe (or its first after Resume)
// after a random delay below min(its interval, maxFirstDelay).
func (s *Scheduler) armFirstLocked(e *entry) {
	now := s.clock.Now()
	first := nextInterval(&e.check, e.since, e.passed, now)
	s.armLocked(e, s.jitter(min(first, maxFirstDelay)))
}

func (s *Scheduler) armLocked(e *entry, d time.Duration) {
	e.state = stateArmed
	seq := e.seq
	e.timer = s.clock.AfterFunc(d, func() { s.due(e, seq) })
}

// due queues e for a worker, unless its timer is stale.
func (s *Scheduler) due(e *entry, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.removed || e.paused || e.seq != seq || e.state != stateArmed {
		return
	}
	e.state = stateQueued
	e.lane.queue = append(e.lane.queue, e)
	e.lane.cond.Signal()
}

// work is one worker of a lane of pool p: it probes the entries that fall
// due, one at a time, delivers their results and arms their next probes,
// until p stops.
func (s *Scheduler) work(p *pool, l *lane) {
	defer s.workers.Done()
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		for len(l.queue) == 0 && !p.stop {
			l.cond.Wait()
		}
		if p.stop {
			return
		}
		e := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		s.serveLocked(e)
	}
}

// serveLocked probes e and delivers the result, releasing the lock while
// it does either.
func (s *Scheduler) serveLocked(e *entry) {
	e.state = stateBusy
	seq := e.seq
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	s.mu.Unlock()
	r := e.run(ctx)
	cancel()
	s.mu.Lock()
	if s.staleLocked(e, seq) {
		return
	}
	s.mu.Unlock()
	s.deliver(e.boxID, e.gen, r)
	s.mu.Lock()
	if s.staleLocked(e, seq) {
		return
	}
	if r.Outcome == messages.HealthPass {
		e.passed = true
	}
	s.armLocked(e, nextInterval(&e.check, e.since, e.passed, s.clock.Now()))
}

// staleLocked settles a busy entry that was removed, paused or resumed
// while a worker held it, and reports whether it was: a removed entry is
// dropped, a paused one left idle, and one paused and resumed meanwhile
// starts afresh.
func (s *Scheduler) staleLocked(e *entry, seq uint64) bool {
	switch {
	case e.removed:
		return true
	case e.paused:
		e.state = stateIdle
		return true
	case e.seq != seq:
		s.armFirstLocked(e)
		return true
	}
	return false
}

// clock is the time source of a Scheduler; tests drive a fake one.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) stopper
}

// stopper cancels a pending AfterFunc.
type stopper interface{ Stop() bool }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }
