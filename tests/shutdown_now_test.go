package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// startMixed starts attached and detached sleep boxes and returns their
// shims by box ID.
func startMixed(h *harness, attached, detached int) (att, det map[string]procID) {
	h.t.Helper()
	att, det = map[string]procID{}, map[string]procID{}
	for i := range attached {
		id := fmt.Sprintf("att-%d", i)
		att[id] = h.procs.track(h.startSleeper(id).PID, "shim of "+id)
	}
	for i := range detached {
		id := fmt.Sprintf("det-%d", i)
		spec := h.sleepSpec()
		spec.Detach = true
		det[id] = h.procs.track(h.start(messages.StartBox{ID: id, Spec: spec}).PID, "shim of "+id)
	}
	return att, det
}

// expired returns a context whose deadline has passed.
func expired(t *testing.T) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	t.Cleanup(cancel)
	return ctx
}

// requireReaped fails for every shim that still exists, alive or as a
// zombie of this process: Shutdown returns after the shims it ended were
// reaped, not merely signalled.
func requireReaped(t *testing.T, what string, shims map[string]procID) {
	t.Helper()
	for id, p := range shims {
		present, zombie, ppid := p.state()
		switch {
		case present && zombie && ppid == os.Getpid():
			t.Errorf("%s: the shim of %s (pid %d) is an unreaped zombie of the embedding process", what, id, p.PID)
		case present && !zombie:
			t.Errorf("%s: the shim of %s (pid %d) is still running", what, id, p.PID)
		}
	}
}

// TestShutdownWithNoTimeLeftKillsEveryBox: Shutdown(StopAll) with an
// expired context kills every box at once, attached and detached, reaps
// every shim before it returns and says that the context left no time; a
// second call finishes nothing more and returns nil (issue: the boxes kept
// running, attached shims stayed zombies, and Shutdown could not be called
// again).
func TestShutdownWithNoTimeLeftKillsEveryBox(t *testing.T) {
	h := newHarness(t)
	att, det := startMixed(h, 3, 2)

	err := h.sup.Shutdown(expired(t), actors.StopAll)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown(StopAll) with an expired context = %v, want an error matching context.DeadlineExceeded", err)
	}
	requireReaped(t, "after Shutdown(StopAll) with no time left", att)
	requireReaped(t, "after Shutdown(StopAll) with no time left", det)
	if err := h.sup.Shutdown(h.ctx(), actors.StopAll); err != nil {
		t.Errorf("a second Shutdown = %v, want nil", err)
	}
}

// TestShutdownLeaveRunningWithNoTimeLeft: with LeaveRunning and an expired
// context, the attached boxes (which cannot outlive the supervisor) are
// killed and reaped at once, and the detached ones are not touched: the
// next supervisor adopts them with the same shims.
func TestShutdownLeaveRunningWithNoTimeLeft(t *testing.T) {
	checkGoroutines(t)
	home := t.TempDir()
	h := startHarness(t, home)
	att, det := startMixed(h, 3, 2)

	err := h.sup.Shutdown(expired(t), actors.LeaveRunning)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown(LeaveRunning) with an expired context = %v, want an error matching context.DeadlineExceeded", err)
	}
	requireReaped(t, "after Shutdown(LeaveRunning) with no time left", att)
	for id, p := range det {
		if !p.alive() {
			t.Errorf("the detached box %s's shim (pid %d) did not survive Shutdown(LeaveRunning)", id, p.PID)
		}
	}
	if err := h.sup.Shutdown(h.ctx(), actors.LeaveRunning); err != nil {
		t.Errorf("a second Shutdown = %v, want nil", err)
	}

	next := startHarness(t, home)
	for id, p := range det {
		if st := next.status(id); st.State != messages.StateRunning || st.PID != p.PID {
			t.Errorf("%s under the next supervisor: state %q pid %d, want running pid %d (adopted)", id, st.State, st.PID, p.PID)
		}
	}
	for id := range att {
		if st := next.status(id); st.State.Live() {
			t.Errorf("%s under the next supervisor: state %q, want it at rest", id, st.State)
		}
	}
}
