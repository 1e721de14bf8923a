package tests

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// callbackBound is how long a call made from an event callback may take
// before the test calls it a deadlock. The callbacks below return at once
// when they work; the bound only turns a regression into a failure instead
// of a hung test binary.
const callbackBound = 20 * time.Second

// boundedSupervisor starts a supervisor whose Shutdown, at cleanup, is
// bounded too: a callback that deadlocked would hang it otherwise.
func boundedSupervisor(t *testing.T) *harness {
	t.Helper()
	home := t.TempDir()
	h := &harness{t: t, home: home, events: &eventLog{}, procs: trackerFor(t, home)}
	sup, err := actors.NewSupervisor(context.Background(), actors.Config{Home: home, ShimBinary: shimBinary, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("NewSupervisor: %v", err)
	}
	h.sup = sup
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			done <- sup.Shutdown(ctx, actors.StopAll)
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Shutdown(StopAll): %v", err)
			}
		case <-time.After(shutdownTimeout + callbackBound):
			t.Errorf("Shutdown(StopAll) did not return: a deadlocked callback holds it")
		}
	})
	return h
}

// TestCancelFromItsOwnCallback: the natural one-shot subscription, whose
// callback cancels itself, works: cancel returns inside the callback and no
// event follows (issue: cancel deadlocked, waiting for the callback it was
// called from).
func TestCancelFromItsOwnCallback(t *testing.T) {
	h := boundedSupervisor(t)
	cancelCh := make(chan func(), 1)
	returned := make(chan struct{})
	var calls atomic.Int32
	cancel := h.sup.Subscribe(actors.EventFilter{}, func(messages.Event) {
		if calls.Add(1) > 1 {
			return
		}
		(<-cancelCh)()
		close(returned)
	})
	cancelCh <- cancel
	h.startSleeper("one-shot") // BoxStarted, BoxReady: the first one cancels
	select {
	case <-returned:
	case <-time.After(callbackBound):
		t.Fatalf("cancel called from its own callback did not return within %s", callbackBound)
	}
	// The Stop's events come after the cancel returned: none reaches the
	// cancelled subscriber.
	if _, err := h.sup.Stop(h.ctx(), "one-shot", 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the cancelled callback ran %d times, want once", n)
	}
	cancel() // a second cancel, from outside, is harmless
}

// TestShutdownFromACallbackIsRefused: Shutdown called from an event
// callback would wait for the delivery it is part of; it is refused with
// ErrBusy instead of hanging, and the supervisor goes on working.
func TestShutdownFromACallbackIsRefused(t *testing.T) {
	h := boundedSupervisor(t)
	result := make(chan error, 1)
	var once atomic.Bool
	cancel := h.sup.Subscribe(actors.EventFilter{Kinds: []string{"BoxReady"}}, func(messages.Event) {
		if once.Swap(true) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), callbackBound)
		defer cancel()
		result <- h.sup.Shutdown(ctx, actors.StopAll)
	})
	defer cancel()
	h.startSleeper("web")
	select {
	case err := <-result:
		if !errors.Is(err, messages.ErrBusy) {
			t.Errorf("Shutdown from a callback = %v, want ErrBusy", err)
		}
	case <-time.After(callbackBound):
		t.Fatalf("Shutdown from a callback did not return within %s", callbackBound)
	}
	stillServes(t, h, "after-refusal")
}
