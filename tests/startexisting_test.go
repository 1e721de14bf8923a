package tests

import (
	"context"
	"errors"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestStartExistingRunsAStoppedBoxAgain: a stopped box starts again from
// its stored spec under a new generation and a new shim; a running box is
// returned as it is; an unknown box is ErrNotFound.
func TestStartExistingRunsAStoppedBoxAgain(t *testing.T) {
	h := newHarness(t)
	first := h.startSleeper("again")
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if _, err := h.sup.Stop(ctx, "again", 0); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	second, err := h.sup.StartExisting(ctx, "again")
	if err != nil {
		t.Fatalf("StartExisting of a stopped box: %v", err)
	}
	if second.State != messages.StateRunning || second.PID == 0 || second.PID == first.PID {
		t.Fatalf("after StartExisting: state %s pid %d (first run pid %d), want running under a new shim", second.State, second.PID, first.PID)
	}
	if second.Generation <= first.Generation {
		t.Errorf("generation %d after StartExisting, want more than %d", second.Generation, first.Generation)
	}
	h.procs.track(second.PID, "shim of the second run")
	again, err := h.sup.StartExisting(ctx, "again")
	if err != nil || again.PID != second.PID {
		t.Fatalf("StartExisting of a running box: pid %d, %v; want it unchanged (pid %d)", again.PID, err, second.PID)
	}
	if _, err := h.sup.StartExisting(ctx, "nope"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("StartExisting of an unknown box: %v, want ErrNotFound", err)
	}
}

// TestStartExistingOfAFailedBoxFailsAgainWithItsReason: a box whose guest
// cannot exec fails; starting it again fails the same way, with the reason.
func TestStartExistingOfAFailedBoxFailsAgainWithItsReason(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	_, err := h.sup.Start(ctx, messages.StartBox{ID: "broken", Spec: h.spec("/nonexistent/guest")})
	requireCode(t, "Start of a guest that cannot exec", err, messages.ErrStartFailed)
	_, err = h.sup.StartExisting(ctx, "broken")
	requireCode(t, "StartExisting of the failed box", err, messages.ErrStartFailed)
	st, err := h.sup.Status(ctx, "broken")
	if err != nil || st.State != messages.StateFailed || st.Generation < 2 {
		t.Fatalf("status after the second failure: %+v, %v; want failed at generation >= 2", st, err)
	}
}
