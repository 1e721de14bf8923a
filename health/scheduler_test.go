package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/messages"
)

// fakeClock is a clock the test moves: AfterFunc callbacks run in Advance,
// on the test's goroutine, and every arming is reported on armed.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	armed  chan time.Duration
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	f    func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.armed <- d
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *fakeTimer) bool { return x == t })
	return len(t.c.timers) < n
}

// Advance moves the clock and runs the callbacks that fall due, in order.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if !t.when.After(c.now) {
			due = append(due, t)
			return true
		}
		return false
	})
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.when.Compare(b.when) })
	for _, t := range due {
		t.f()
	}
}

func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// nextArm waits for the scheduler to arm a timer and returns its delay.
func (c *fakeClock) nextArm(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no timer was armed")
		return 0
	}
}

// probeCall is one probe the scheduler ran: the test answers it.
type probeCall struct {
	box   string
	ctx   context.Context
	reply chan messages.HealthResult
}

// fakeProber stands in for Probe: each call waits for the test's answer
// or for its context's end.
type fakeProber struct{ calls chan probeCall }

func (p *fakeProber) probe(ctx context.Context, _ *messages.HealthCheck, t Target) messages.HealthResult {
	c := probeCall{box: t.Spec.BoxID, ctx: ctx, reply: make(chan messages.HealthResult, 1)}
	p.calls <- c
	select {
	case r := <-c.reply:
		return r
	case <-ctx.Done():
		return messages.HealthResult{Outcome: messages.HealthError, Reason: "cancelled"}
	}
}

func (p *fakeProber) next(t *testing.T) probeCall {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no probe ran")
		return probeCall{}
	}
}

// delivery is one result the scheduler delivered.
type delivery struct {
	box string
	gen uint64
	r   messages.HealthResult
}

// schedHarness is a Scheduler on a fake clock with fake probes and a fixed
// first delay (half the bound).
type schedHarness struct {
	s         *Scheduler
	clock     *fakeClock
	prober    *fakeProber
	delivered chan delivery
}

func newHarness(t *testing.T, opts Options) *schedHarness {
	t.Helper()
	h := &schedHarness{clock: newFakeClock(), prober: &fakeProber{calls: make(chan probeCall, 100)},
		delivered: make(chan delivery, 100)}
	h.s = newScheduler(func(box string, gen uint64, r messages.HealthResult) {
		h.delivered <- delivery{box, gen, r}
	}, opts, h.clock, h.prober.probe, func(limit time.Duration) time.Duration { return limit / 2 })
	t.Cleanup(h.s.Close)
	return h
}

func (h *schedHarness) add(t *testing.T, box string, gen uint64, check messages.HealthCheck) {
	t.Helper()
	if err := h.s.Add(Job{BoxID: box, Gen: gen, Check: check, Target: Target{Spec: &messages.InstanceSpec{BoxID: box}}}); err != nil {
		t.Fatal(err)
	}
}

func (h *schedHarness) nextDelivery(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-h.delivered:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was delivered")
		return delivery{}
	}
}

// queued returns how many entries wait for a worker in each lane.
func (s *Scheduler) queued() (network, exec int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pool == nil {
		return 0, 0
	}
	return len(s.pool.network.queue), len(s.pool.exec.queue)
}

var (
	passResult = messages.HealthResult{Outcome: messages.HealthPass}
	failResult = messages.HealthResult{Outcome: messages.HealthFail, Reason: "no"}
)

func tcpCheck(interval time.Duration) messages.HealthCheck {
	return messages.HealthCheck{TCP: "127.0.0.1:1", Interval: interval}
}

func TestSchedulerCostsNothingWithoutChecks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	h := newHarness(t, Options{NetworkWorkers: 3, ExecWorkers: 2})
	if err := goleak.Find(before); err != nil {
		t.Fatalf("a scheduler without checks runs goroutines: %v", err)
	}
	h.add(t, "a", 1, tcpCheck(time.Minute))
	h.add(t, "b", 1, tcpCheck(time.Minute))
	if h.clock.pending() != 2 {
		t.Fatalf("%d timers for 2 boxes", h.clock.pending())
	}
	if goleak.Find(before) == nil {
		t.Fatal("no workers run while boxes have checks")
	}
	h.s.Remove("a")
	h.s.Remove("b")
	if h.clock.pending() != 0 {
		t.Fatalf("%d timers left once every check is removed", h.clock.pending())
	}
	var err error
	if !eventually(10*time.Second, func() bool { err = goleak.Find(before); return err == nil }) {
		t.Fatalf("goroutines left once every check is removed: %v", err)
	}
}

func TestSchedulerProbesOnSchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	check := messages.HealthCheck{TCP: "127.0.0.1:1", Interval: 30 * time.Second, StartPeriod: time.Minute, StartInterval: 2 * time.Second}
	h.add(t, "web", 7, check)
	// The first probe: a random delay below min(start interval, 1 s).
	if d := h.clock.nextArm(t); d != maxFirstDelay/2 {
		t.Fatalf("first delay %v, want the jitter's %v", d, maxFirstDelay/2)
	}
	h.clock.Advance(maxFirstDelay / 2)
	call := h.prober.next(t)
	call.reply <- failResult
	if d := h.nextDelivery(t); d.box != "web" || d.gen != 7 || d.r.Outcome != messages.HealthFail {
		t.Fatalf("delivered %+v", d)
	}
	// Failing in the start period: the start interval.
	if d := h.clock.nextArm(t); d != 2*time.Second {
		t.Fatalf("after a failure in the start period the next probe is in %v, want 2s", d)
	}
	h.clock.Advance(2 * time.Second)
	h.prober.next(t).reply <- passResult
	h.nextDelivery(t)
	// The first pass ends the start period: the interval.
	if d := h.clock.nextArm(t); d != 30*time.Second {
		t.Fatalf("after the first pass the next probe is in %v, want 30s", d)
	}
	h.clock.Advance(29 * time.Second)
	if n, _ := h.s.queued(); n != 0 || h.clock.pending() != 1 {
		t.Fatalf("a probe fell due early: %d queued, %d timers", n, h.clock.pending())
	}
	h.clock.Advance(time.Second)
	h.prober.next(t).reply <- failResult
	h.nextDelivery(t)
	if d := h.clock.nextArm(t); d != 30*time.Second {
		t.Fatalf("after the start period a failure waits %v, want the interval", d)
	}
}

func TestSchedulerFirstDelayIsBoundedByTheInterval(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.add(t, "fast", 1, tcpCheck(200*time.Millisecond))
	if d := h.clock.nextArm(t); d != 100*time.Millisecond {
		t.Fatalf("first delay %v, want half of min(200ms, 1s)", d)
	}
}

func TestSchedulerBoundsConcurrency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{NetworkWorkers: 2, ExecWorkers: 1})
	for i := range 5 {
		h.add(t, fmt.Sprint("n", i), 1, tcpCheck(time.Minute))
	}
	h.add(t, "x", 1, messages.HealthCheck{Exec: []string{"true"}, Interval: time.Minute})
	h.clock.Advance(maxFirstDelay)
	running := map[string]probeCall{}
	for range 3 { // two network workers and one exec worker
		c := h.prober.next(t)
		running[c.box] = c
	}
	if _, ok := running["x"]; !ok {
		t.Fatalf("the exec probe waits behind network probes: running %v", keys(running))
	}
	if !eventually(10*time.Second, func() bool { n, e := h.s.queued(); return n == 3 && e == 0 }) {
		n, e := h.s.queued()
		t.Fatalf("queued %d network and %d exec probes, want 3 and 0 while both network workers are busy", n, e)
	}
	// One network worker frees up: one more probe runs.
	for box, c := range running {
		if box != "x" {
			c.reply <- passResult
			break
		}
	}
	h.nextDelivery(t)
	h.prober.next(t)
	if n, _ := h.s.queued(); n != 2 {
		t.Fatalf("%d network probes still queued, want 2", n)
	}
}

func keys(m map[string]probeCall) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestSchedulerOneProbeAtATimePerBox(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.add(t, "slow", 1, tcpCheck(time.Second))
	h.clock.nextArm(t)
	h.clock.Advance(time.Second)
	call := h.prober.next(t)
	// However long the probe takes, no second one starts: the next timer
	// is armed only once this result has been delivered.
	h.clock.Advance(time.Hour)
	if h.clock.pending() != 0 {
		t.Fatal("a timer is armed while the box's probe is still running")
	}
	call.reply <- passResult
	h.nextDelivery(t)
	if d := h.clock.nextArm(t); d != time.Second {
		t.Fatalf("next probe in %v, want the interval after the end of the last", d)
	}
}

func TestSchedulerRemoveCancelsAndDrops(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.add(t, "gone", 1, tcpCheck(time.Second))
	h.clock.Advance(time.Second)
	call := h.prober.next(t)
	h.s.Remove("gone")
	select {
	case <-call.ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Remove did not cancel the probe in flight")
	}
	h.s.Close() // waits for the worker: a delivery would have happened by now
	select {
	case d := <-h.delivered:
		t.Fatalf("a removed box's result was delivered: %+v", d)
	default:
	}
	if h.clock.pending() != 0 {
		t.Fatal("a removed box keeps a timer")
	}
	if err := h.s.Add(Job{BoxID: "late", Check: tcpCheck(time.Second)}); !errors.Is(err, messages.ErrShuttingDown) {
		t.Fatalf("Add after Close = %v, want ErrShuttingDown", err)
	}
}

func TestSchedulerAddReplacesTheOldGeneration(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.add(t, "web", 1, tcpCheck(time.Second))
	h.clock.Advance(time.Second)
	old := h.prober.next(t)
	h.add(t, "web", 2, tcpCheck(time.Second))
	<-old.ctx.Done()
	h.clock.Advance(time.Second)
	h.prober.next(t).reply <- passResult
	if d := h.nextDelivery(t); d.gen != 2 {
		t.Fatalf("delivered generation %d, want only the new generation's results", d.gen)
	}
}

func TestSchedulerPauseAndResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.add(t, "web", 3, tcpCheck(time.Second))
	h.clock.nextArm(t)
	if h.s.Pause("web", 2) || h.s.Pause("other", 3) {
		t.Fatal("Pause of another generation or box reported success")
	}
	if !h.s.Pause("web", 3) || h.clock.pending() != 0 {
		t.Fatalf("Pause left %d timers", h.clock.pending())
	}
	h.clock.Advance(time.Hour)
	if n, _ := h.s.queued(); n != 0 {
		t.Fatal("a paused box was queued")
	}
	if !h.s.Resume("web", 3) {
		t.Fatal("Resume failed")
	}
	if d := h.clock.nextArm(t); d != maxFirstDelay/2 {
		t.Fatalf("Resume arms after %v, want a first delay", d)
	}
	h.clock.Advance(time.Second)
	// Paused while probing: the result is dropped and nothing is armed.
	call := h.prober.next(t)
	h.s.Pause("web", 3)
	<-call.ctx.Done()
	// Resumed before the worker let go of it: armed afresh, once.
	h.s.Resume("web", 3)
	if d := h.clock.nextArm(t); d != maxFirstDelay/2 {
		t.Fatalf("resumed while busy: armed after %v", d)
	}
	h.clock.Advance(time.Second)
	h.prober.next(t).reply <- passResult
	if d := h.nextDelivery(t); d.r.Outcome != messages.HealthPass {
		t.Fatalf("delivered %+v, want the pass after the resume (the cancelled probe is dropped)", d)
	}
}

func TestSchedulerDeliverMayCallBack(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	prober := &fakeProber{calls: make(chan probeCall, 10)}
	var s *Scheduler
	done := make(chan uint64, 10)
	s = newScheduler(func(box string, gen uint64, r messages.HealthResult) {
		if gen == 1 {
			// The box restarts: its next generation replaces this one.
			_ = s.Add(Job{BoxID: box, Gen: 2, Check: tcpCheck(time.Second), Target: Target{Spec: &messages.InstanceSpec{BoxID: box}}})
		} else {
			s.Remove(box)
		}
		done <- gen
	}, Options{}, clock, prober.probe, func(time.Duration) time.Duration { return 0 })
	defer s.Close()
	if err := s.Add(Job{BoxID: "web", Gen: 1, Check: tcpCheck(time.Second), Target: Target{Spec: &messages.InstanceSpec{BoxID: "web"}}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(0)
	prober.next(t).reply <- passResult
	<-done
	clock.Advance(0)
	prober.next(t).reply <- passResult
	if gen := <-done; gen != 2 {
		t.Fatalf("delivered generation %d", gen)
	}
	if clock.pending() != 0 {
		t.Fatal("a timer is left after the callback removed the box")
	}
}

func TestSchedulerRefusesInvalidChecks(t *testing.T) {
	t.Parallel()
	s := NewScheduler(func(string, uint64, messages.HealthResult) {}, Options{})
	defer s.Close()
	if err := s.Add(Job{BoxID: "x"}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("Add of an empty check = %v, want ErrBadSpec", err)
	}
}

// TestSchedulerWithRealProbes runs real tcp checks of real listeners on
// the real clock, and a box whose listener goes away.
func TestSchedulerWithRealProbes(t *testing.T) {
	t.Parallel()
	const boxes = 20
	var mu sync.Mutex
	results := map[string][]messages.HealthOutcome{}
	s := NewScheduler(func(box string, _ uint64, r messages.HealthResult) {
		mu.Lock()
		results[box] = append(results[box], r.Outcome)
		mu.Unlock()
	}, Options{NetworkWorkers: 4})
	var listeners []net.Listener
	for i := range boxes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, ln)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_ = c.Close()
			}
		}()
		id := fmt.Sprint("box", i)
		if err := s.Add(Job{BoxID: id, Gen: 1, Check: messages.HealthCheck{TCP: ln.Addr().String(), Interval: 100 * time.Millisecond, Timeout: time.Second},
			Target: Target{Spec: &messages.InstanceSpec{BoxID: id}}}); err != nil {
			t.Fatal(err)
		}
	}
	_ = listeners[0].Close()
	ok := eventually(20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range boxes {
			if len(results[fmt.Sprint("box", i)]) < 3 {
				return false
			}
		}
		return true
	})
	s.Close()
	for _, ln := range listeners[1:] {
		_ = ln.Close()
	}
	if !ok {
		t.Fatalf("not every box was probed 3 times: %v", results)
	}
	for box, outs := range results {
		want := messages.HealthPass
		if box == "box0" {
			want = messages.HealthFail
		}
		for _, o := range outs {
			if o != want {
				t.Fatalf("%s: %v, want every probe %s", box, outs, want)
			}
		}
	}
}
