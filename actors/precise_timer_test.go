package actors

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestAfterFuncPreciseRunsOnceAfterTheDelay(t *testing.T) {
	t.Parallel()
	const delay = 20 * time.Millisecond
	var calls atomic.Int32
	ran := make(chan time.Time, 2)
	armed := time.Now()
	cancel := afterFuncPrecise(delay, func() {
		calls.Add(1)
		ran <- time.Now()
	})
	select {
	case at := <-ran:
		if early := delay - at.Sub(armed); early > 0 {
			t.Errorf("ran %v before its delay", early)
		}
	case <-time.After(testTimeout):
		t.Fatal("the timer never ran")
	}
	cancel() // after it ran: nothing to cancel, and no second call
	if n := calls.Load(); n != 1 {
		t.Errorf("ran %d times, want once", n)
	}
}

func TestAfterFuncPreciseCancelledBeforeItsTimeNeverRuns(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	cancel := afterFuncPrecise(time.Hour, func() { calls.Add(1) })
	cancel()
	cancel() // twice is harmless
	// The parked goroutine ends with the cancel (goleak checks at exit).
	if n := calls.Load(); n != 0 {
		t.Errorf("a cancelled timer ran %d times", n)
	}
}

func TestAfterFuncPreciseWithoutDelayRunsAtOnce(t *testing.T) {
	t.Parallel()
	ran := make(chan struct{})
	afterFuncPrecise(0, func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(testTimeout):
		t.Fatal("a zero delay never ran")
	}
}
