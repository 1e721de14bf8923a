package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// concurrentBoxes is how many boxes TestConcurrentBoxes runs at once;
// BOXSUP_TEST_BOXES overrides it.
const concurrentBoxes = 200

// raceCallTimeout bounds every single call in TestConcurrentBoxes: a call
// that does not return within it is taken for a deadlock.
const raceCallTimeout = 60 * time.Second

// callChecker checks the outcome of concurrent facade calls: each must
// return before its deadline, with nil or a typed *messages.Error.
type callChecker struct {
	t       *testing.T
	timeout time.Duration // a call not answered within it is taken for a deadlock
	mu      sync.Mutex
	errs    []string
	counts  map[string]int // code (or "ok") → calls
	hung    atomic.Bool    // some call got no answer before its deadline
	dump    string         // the goroutines when the first hang was seen
}

func newCallChecker(t *testing.T, timeout time.Duration) *callChecker {
	return &callChecker{t: t, timeout: timeout, counts: map[string]int{}}
}

// call runs fn with a fresh deadline and checks what it returned.
func (c *callChecker) call(op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	err := fn(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	var e *messages.Error
	switch {
	case ctx.Err() != nil || errors.Is(err, messages.ErrTimeout):
		// ErrTimeout is the facade's "no reply before the deadline".
		if !c.hung.Swap(true) {
			c.dump = goroutineDump()
		}
		c.errs = append(c.errs, fmt.Sprintf("%s: no answer within %s (deadlock?): %v", op, c.timeout, err))
	case err == nil:
		c.counts["ok"]++
	case errors.As(err, &e):
		c.counts[string(e.Code)]++
	default:
		c.errs = append(c.errs, fmt.Sprintf("%s: untyped error %T: %v", op, err, err))
	}
	return err
}

func (c *callChecker) report() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		c.t.Error(e)
	}
	if c.dump != "" {
		c.t.Logf("goroutines when the first call hung:\n%s", c.dump)
	}
	c.t.Logf("call outcomes: %v", c.counts)
}

// metricsLoop calls MetricsAll back to back until stop is closed, and
// returns the number of calls and the slowest one.
func metricsLoop(h *harness, c *callChecker, stop <-chan struct{}) func() (int, time.Duration) {
	var calls atomic.Int64
	var slowest atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			began := time.Now()
			_ = c.call("MetricsAll", func(ctx context.Context) error {
				_, err := h.sup.MetricsAll(ctx)
				return err
			})
			calls.Add(1)
			if d := int64(time.Since(began)); d > slowest.Load() {
				slowest.Store(d)
			}
			// Pace the loop: with no live box a call returns in microseconds,
			// and a spinning loop would only measure the scheduler.
			time.Sleep(time.Millisecond)
		}
	}()
	return func() (int, time.Duration) {
		<-done
		return int(calls.Load()), time.Duration(slowest.Load())
	}
}

// parallel runs fn(i) for i in [0, n) on n goroutines and waits.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

// TestConcurrentBoxes starts many boxes at once with MetricsAll running
// alongside, stops them all at once the same way, then races Start, Stop
// and Remove on a few IDs for many rounds. No call may hang, every error
// must be typed, and neither goroutines (goleak, per test) nor processes
// (assertNoLeftovers) may be left behind.
func TestConcurrentBoxes(t *testing.T) {
	n := concurrentBoxes
	if s := os.Getenv("BOXSUP_TEST_BOXES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("BOXSUP_TEST_BOXES=%q", s)
		}
		n = v
	}
	h := newHarness(t)
	c := newCallChecker(t, raceCallTimeout)
	defer c.report()
	id := func(i int) string { return fmt.Sprintf("c%03d", i) }

	// Start everything while MetricsAll runs.
	stop := make(chan struct{})
	metricsDone := metricsLoop(h, c, stop)
	began := time.Now()
	parallel(n, func(i int) {
		h.procs.useBox(id(i))
		err := c.call("Start "+id(i), func(ctx context.Context) error {
			st, err := h.sup.Start(ctx, messages.StartBox{ID: id(i), Spec: h.sleepSpec()})
			if err == nil && st.State != messages.StateRunning {
				err = fmt.Errorf("state %q", st.State)
			}
			return err
		})
		if err != nil {
			t.Errorf("Start(%s): %v", id(i), err)
		}
	})
	startTook := time.Since(began)
	close(stop)
	calls, slowest := metricsDone()
	t.Logf("%d boxes started in %v (%d MetricsAll meanwhile, slowest %v)", n, startTook, calls, slowest)

	began = time.Now()
	samples, err := h.sup.MetricsAll(h.ctx())
	if err != nil {
		t.Fatalf("MetricsAll: %v", err)
	}
	t.Logf("MetricsAll over %d running boxes, nothing else going on: %v", n, time.Since(began))
	if len(samples) != n {
		t.Errorf("MetricsAll with %d running boxes returned %d samples", n, len(samples))
	}
	for i, m := range samples {
		if m.PID <= 0 || m.Processes < 2 {
			t.Errorf("sample %s: pid %d processes %d", m.ID, m.PID, m.Processes)
		}
		if i > 0 && samples[i-1].ID >= m.ID {
			t.Errorf("MetricsAll not sorted: %s before %s", samples[i-1].ID, m.ID)
		}
	}

	// Stop everything while MetricsAll runs.
	stop = make(chan struct{})
	metricsDone = metricsLoop(h, c, stop)
	began = time.Now()
	parallel(n, func(i int) {
		err := c.call("Stop "+id(i), func(ctx context.Context) error {
			st, err := h.sup.Stop(ctx, id(i), 10*time.Second)
			if err == nil && st.State != messages.StateExited {
				err = fmt.Errorf("state %q", st.State)
			}
			return err
		})
		if err != nil {
			t.Errorf("Stop(%s): %v", id(i), err)
		}
	})
	stopTook := time.Since(began)
	close(stop)
	calls, slowest = metricsDone()
	t.Logf("%d boxes stopped in %v (%d MetricsAll meanwhile, slowest %v)", n, stopTook, calls, slowest)
	if samples, err := h.sup.MetricsAll(h.ctx()); err != nil || len(samples) != 0 {
		t.Errorf("MetricsAll after stopping everything: %d samples, err %v", len(samples), err)
	}

	raceStartStopRemove(t, h, c)
}

// raceStartStopRemove races Start, Stop and Remove (forced every other
// round) on the same few IDs, then removes whatever is left.
func raceStartStopRemove(t *testing.T, h *harness, c *callChecker) {
	const ids, rounds = 4, 25
	rid := func(i int) string { return fmt.Sprintf("race%d", i) }
	stop := make(chan struct{})
	metricsDone := metricsLoop(h, c, stop)
	began := time.Now()
	round := 0
	for ; round < rounds && !c.hung.Load(); round++ {
		force := round%2 == 0
		parallel(ids*3, func(k int) {
			id := rid(k % ids)
			h.procs.useBox(id)
			switch k / ids {
			case 0:
				_ = c.call("Start "+id, func(ctx context.Context) error {
					_, err := h.sup.Start(ctx, messages.StartBox{ID: id, Spec: h.sleepSpec(), StopTimeout: 5 * time.Second})
					return err
				})
			case 1:
				_ = c.call("Stop "+id, func(ctx context.Context) error {
					_, err := h.sup.Stop(ctx, id, 5*time.Second)
					return err
				})
			default:
				_ = c.call("Remove "+id, func(ctx context.Context) error {
					_, err := h.sup.Remove(ctx, id, force)
					return err
				})
			}
		})
	}
	close(stop)
	calls, _ := metricsDone()
	t.Logf("%d rounds of Start/Stop/Remove on %d ids in %v (%d MetricsAll meanwhile)", round, ids, time.Since(began), calls)

	for i := 0; i < ids; i++ {
		id := rid(i)
		if err := removeUntilGone(h, id); err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if h.boxDirExists(id) {
			t.Errorf("%s: box directory still exists after Remove", id)
		}
	}
}

// removeUntilGone removes box id (forcing a stop), retrying while it is
// busy, until Status says it does not exist.
func removeUntilGone(h *harness, id string) error {
	deadline := time.Now().Add(replyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
		_, err := h.sup.Remove(ctx, id, true)
		cancel()
		if err == nil || errors.Is(err, messages.ErrNotFound) {
			_, err = h.sup.Status(h.ctx(), id)
			if errors.Is(err, messages.ErrNotFound) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still there %s after the first Remove: %v", replyTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

// goroutineDump returns every goroutine's stack, identical stacks grouped.
func goroutineDump() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}
