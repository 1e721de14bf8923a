package tests

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestCancelledCallReturnsAndLeavesNothingWaiting: a facade call whose
// context is cancelled while the box is still working on it (a Stop of a box
// that ignores SIGTERM, with a long timeout) returns context.Canceled at
// once; the test's goroutine check then proves that nothing was left waiting
// for the reply. The stop itself goes on and the box still ends.
func TestCancelledCallReturnsAndLeavesNothingWaiting(t *testing.T) {
	h := newHarness(t)
	startStubborn(h, "slow", time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.sup.Stop(ctx, "slow", time.Minute)
		done <- err
	}()
	eventually(t, "the box to be stopping", func() (bool, string) {
		st := h.status("slow")
		return st.State == messages.StateStopping, string(st.State)
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Stop with a cancelled context: %v, want context.Canceled", err)
		}
	case <-time.After(replyTimeout):
		t.Fatal("Stop did not return after its context was cancelled")
	}
	kctx, kcancel := context.WithTimeout(context.Background(), callTimeout)
	defer kcancel()
	st, err := h.sup.Kill(kctx, "slow")
	if err != nil || st.State != messages.StateExited {
		t.Fatalf("Kill after the cancelled stop: %+v, %v", st, err)
	}
}
