package tests

import (
	"context"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// TestShutdownLeaveRunning: Shutdown(LeaveRunning) leaves a detached box
// running for the next supervisor on the home, which adopts it; an attached
// box stops by itself when its keepalive pipe closes, and its shim (a child
// of this process) is reaped rather than left a zombie.
func TestShutdownLeaveRunning(t *testing.T) {
	checkGoroutines(t)
	home := t.TempDir()
	h := startHarness(t, home)
	attached := h.startSleeper("attached")
	detachedSpec := h.sleepSpec()
	detachedSpec.Detach = true
	detached := h.start(messages.StartBox{ID: "detached", Spec: detachedSpec})
	if !detached.Detached || attached.Detached {
		t.Errorf("Detached flags: attached %v, detached %v", attached.Detached, detached.Detached)
	}
	attachedShim := h.procs.track(attached.PID, "shim of attached")
	detachedShim := h.procs.track(detached.PID, "shim of detached")

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.sup.Shutdown(ctx, actors.LeaveRunning); err != nil {
		t.Fatalf("Shutdown(LeaveRunning): %v", err)
	}
	eventually(t, "the attached box's shim to exit once its keepalive closed", func() (bool, string) {
		return !attachedShim.alive(), "still running"
	})
	if !detachedShim.alive() {
		t.Fatalf("the detached box's shim died with its supervisor")
	}
	// The attached shim is this process's child: somebody has to reap it.
	reapedBy := time.Now().Add(5 * time.Second)
	for !attachedShim.gone() && time.Now().Before(reapedBy) {
		time.Sleep(pollInterval)
	}
	if !attachedShim.gone() {
		t.Errorf("the attached box's shim (pid %d) exited after Shutdown(LeaveRunning) but was never reaped: a zombie child of the embedding process", attached.PID)
	}

	next := startHarness(t, home, withOwnSystem())
	st := next.status("detached")
	if st.State != messages.StateRunning || st.PID != detached.PID {
		t.Errorf("detached box under the next supervisor: state %q pid %d, want running pid %d", st.State, st.PID, detached.PID)
	}
	if adopted := waitForEvent[messages.BoxAdopted](t, next.events, "detached", 1)[0]; adopted.PID != detached.PID {
		t.Errorf("BoxAdopted pid %d, want %d", adopted.PID, detached.PID)
	}
	if st := next.status("attached"); st.State.Live() || st.LastExit == nil {
		t.Errorf("attached box under the next supervisor: state %q LastExit %+v, want exited with a record", st.State, st.LastExit)
	}
	if _, err := next.sup.Stop(next.ctx(), "detached", 10*time.Second); err != nil {
		t.Errorf("Stop of the adopted detached box: %v", err)
	}
}

// TestShutdownStopAllHonoursStopTimeout: Shutdown(StopAll) stops each box
// within the smaller of its own stop timeout and what is left of the
// shutdown context, so a box that ignores SIGTERM is killed after its
// 300 ms, not after the whole shutdown budget.
func TestShutdownStopAllHonoursStopTimeout(t *testing.T) {
	h := newHarness(t)
	tree := startStubborn(h, "stubborn", 300*time.Millisecond)

	const budget = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	err := h.sup.Shutdown(ctx, actors.StopAll)
	took := time.Since(began)
	if err != nil {
		t.Errorf("Shutdown(StopAll): %v", err)
	}
	// Generous: the right answer is about 300 ms; waiting out the budget
	// (the box's own timeout ignored) takes 20 s.
	if took > budget/2 {
		t.Errorf("Shutdown(StopAll) took %v for a box with a 300 ms stop timeout", took)
	}
	if !tree[0].gone() {
		t.Errorf("Shutdown(StopAll) returned while the shim (pid %d) still existed", tree[0].PID)
	}
}
