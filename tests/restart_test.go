package tests

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// crashingGuest runs for a moment (long enough to be declared ready even
// on a loaded machine) and then exits with code 3.
const crashingGuest = "sleep 0.5; exit 3"

// TestRestartOnFailureBacksOffThenFails: a guest that keeps exiting 3 under
// on-failure is restarted MaxRestarts times with a doubling backoff (no
// jitter, so the delays are exact), then the box fails.
func TestRestartOnFailureBacksOffThenFails(t *testing.T) {
	h := newHarness(t)
	policy := messages.RestartPolicy{
		Mode:           messages.RestartOnFailure,
		MaxRestarts:    3,
		Window:         time.Minute,
		InitialBackoff: 50 * time.Millisecond,
		MaxBackoff:     time.Second,
		NoJitter:       true,
	}
	h.start(messages.StartBox{ID: "crashy", Spec: h.spec("/bin/sh", "-c", crashingGuest), Restart: policy})

	failed := waitForEvent[messages.BoxFailed](t, h.events, "crashy", 1)[0]
	if !strings.Contains(failed.Reason, "restart") {
		t.Errorf("BoxFailed.Reason = %q, want it to name the restart limit", failed.Reason)
	}
	evs := h.events.all()

	restarts := eventsOf[messages.BoxRestarting](evs, "crashy")
	wantDelays := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	if len(restarts) != len(wantDelays) {
		t.Fatalf("%d BoxRestarting events, want %d: %s", len(restarts), len(wantDelays), describe(evs))
	}
	for i, r := range restarts {
		if r.Delay != wantDelays[i] {
			t.Errorf("restart %d: delay %v, want %v", i+1, r.Delay, wantDelays[i])
		}
		if i > 0 && r.Delay <= restarts[i-1].Delay {
			t.Errorf("restart %d: delay %v does not grow (previous %v)", i+1, r.Delay, restarts[i-1].Delay)
		}
		if r.Attempt != i+1 {
			t.Errorf("restart %d: Attempt = %d", i+1, r.Attempt)
		}
	}

	exits := eventsOf[messages.BoxExited](evs, "crashy")
	if len(exits) != 4 {
		t.Errorf("%d BoxExited events, want 4 (first run and 3 restarts)", len(exits))
	}
	pids := map[int]bool{}
	for i, e := range exits {
		if e.Exit.ExitCode != 3 || e.Exit.Signal != "" || e.Requested {
			t.Errorf("exit %d = %+v requested=%v, want code 3, no signal, not requested", i+1, e.Exit, e.Requested)
		}
		pids[e.PID] = true
	}
	if len(pids) != len(exits) {
		t.Errorf("exits came from %d distinct pids, want %d (a new shim per run)", len(pids), len(exits))
	}
	if n := len(eventsOf[messages.BoxReady](evs, "crashy")); n != 4 {
		t.Errorf("%d BoxReady events, want 4", n)
	}
	run := []string{"BoxStarted", "BoxReady", "BoxExited"}
	var want []string
	for i := 0; i < 4; i++ {
		want = append(want, run...)
		if i < 3 {
			want = append(want, "BoxRestarting")
		}
	}
	want = append(want, "BoxFailed")
	if got := kindsOf(evs, "crashy"); !slices.Equal(got, want) {
		t.Errorf("events for crashy:\n got %v\nwant %v", got, want)
	}

	st := h.status("crashy")
	if st.State != messages.StateFailed {
		t.Errorf("Status state %q, want failed", st.State)
	}
	if st.Restarts != 3 {
		t.Errorf("Status restarts %d, want 3", st.Restarts)
	}
	if st.LastExit == nil || st.LastExit.ExitCode != 3 {
		t.Errorf("Status LastExit = %+v, want exit code 3", st.LastExit)
	}
}

// TestRestartNoLeavesBoxExited: with restart mode no, a crash leaves the
// box exited with the guest's code and nothing restarts it.
func TestRestartNoLeavesBoxExited(t *testing.T) {
	h := newHarness(t)
	h.start(messages.StartBox{
		ID:      "once",
		Spec:    h.spec("/bin/sh", "-c", crashingGuest),
		Restart: messages.RestartPolicy{Mode: messages.RestartNo},
	})
	exited := waitForEvent[messages.BoxExited](t, h.events, "once", 1)[0]
	if exited.Requested || exited.Exit.ExitCode != 3 {
		t.Errorf("BoxExited = %+v, want an unrequested exit with code 3", exited)
	}
	// The state is committed before the exit is announced, and a restart
	// would be announced together with the exit: what Status says now is final.
	st := h.status("once")
	if st.State != messages.StateExited {
		t.Errorf("Status state %q, want exited", st.State)
	}
	if st.LastExit == nil || st.LastExit.ExitCode != 3 || st.LastExit.Signal != "" {
		t.Errorf("Status LastExit = %+v, want exit code 3", st.LastExit)
	}
	if st.Restarts != 0 {
		t.Errorf("Status restarts %d, want 0", st.Restarts)
	}
	if n := len(eventsOf[messages.BoxRestarting](h.events.all(), "once")); n != 0 {
		t.Errorf("%d BoxRestarting events under restart mode no", n)
	}
}

// TestRestartAlwaysRestartsCleanExit: mode always restarts a guest that
// exits 0, and a Stop ends the cycle wherever it is.
func TestRestartAlwaysRestartsCleanExit(t *testing.T) {
	h := newHarness(t)
	h.start(messages.StartBox{
		ID:   "phoenix",
		Spec: h.spec("/bin/sh", "-c", "sleep 0.5"),
		Restart: messages.RestartPolicy{
			Mode:           messages.RestartAlways,
			MaxRestarts:    100,
			Window:         time.Minute,
			InitialBackoff: 50 * time.Millisecond,
			MaxBackoff:     100 * time.Millisecond,
			NoJitter:       true,
		},
	})
	waitForEvent[messages.BoxRestarting](t, h.events, "phoenix", 1)
	waitForEvent[messages.BoxReady](t, h.events, "phoenix", 2) // really running again
	first := eventsOf[messages.BoxExited](h.events.all(), "phoenix")[0]
	if !first.Exit.Success() || first.Requested {
		t.Errorf("first exit = %+v requested=%v, want a clean, unrequested exit", first.Exit, first.Requested)
	}
	if st := h.status("phoenix"); st.Restarts < 1 {
		t.Errorf("Status restarts %d, want >= 1", st.Restarts)
	}

	stopped, err := h.sup.Stop(h.ctx(), "phoenix", 5*time.Second)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if stopped.State != messages.StateExited {
		t.Errorf("Stop reply state %q, want exited", stopped.State)
	}
	if st := h.status("phoenix"); st.State != messages.StateExited {
		t.Errorf("Status after Stop: %q, want exited", st.State)
	}
}

// liveChildren returns the live children of pid (zombies excluded).
func liveChildren(pid int) []int {
	var out []int
	for _, p := range descendants(scanProcs(), pid) {
		if p.PPID == pid && p.State != 'Z' {
			out = append(out, p.PID)
		}
	}
	return out
}

// TestRestartInPlaceKeepsTheShim: under "always, at once, no limit" the
// reference shim restarts a crashed guest itself (docs/SHIM-PROTOCOL.md
// §16): the same shim and generation run a new guest; the exit is recorded
// and announced as a restart in place.
func TestRestartInPlaceKeepsTheShim(t *testing.T) {
	h := newHarness(t)
	now := messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: -1, InitialBackoff: -1}
	st := h.start(messages.StartBox{ID: "inplace", Spec: h.sleepSpec(), Restart: now})
	var first int
	eventually(t, "the guest", func() (bool, string) {
		kids := liveChildren(st.PID)
		if len(kids) == 1 {
			first = kids[0]
		}
		return first != 0, fmt.Sprintf("children of the shim: %v", kids)
	})
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	readies := waitForEvent[messages.BoxReady](t, h.events, "inplace", 2)
	if !readies[1].InPlace || readies[1].PID != st.PID || readies[1].Generation != st.Generation {
		t.Errorf("second BoxReady = %+v, want in place, shim pid %d, generation %d", readies[1], st.PID, st.Generation)
	}
	eventually(t, "a new guest under the same shim", func() (bool, string) {
		kids := liveChildren(st.PID)
		return len(kids) == 1 && kids[0] != first, fmt.Sprintf("children of the shim: %v", kids)
	})
	after := h.status("inplace")
	if after.State != messages.StateRunning || after.PID != st.PID || after.Generation != st.Generation || after.Restarts != 1 {
		t.Errorf("status after the restart = %+v; want running, pid %d, generation %d, 1 restart", after, st.PID, st.Generation)
	}
	if ex := after.LastExit; ex == nil || ex.Signal != "SIGKILL" || ex.Source != messages.SourceShim {
		t.Errorf("LastExit = %+v, want the guest's SIGKILL reported by the shim", ex)
	}
	evs := h.events.all()
	if got, want := kindsOf(evs, "inplace"), []string{"BoxStarted", "BoxReady", "BoxExited", "BoxRestarting", "BoxReady"}; !slices.Equal(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
	if r := eventsOf[messages.BoxRestarting](evs, "inplace"); len(r) != 1 || !r[0].InPlace || r[0].Delay != 0 || r[0].Attempt != 1 {
		t.Errorf("BoxRestarting = %+v, want one, in place, at once, attempt 1", r)
	}

	stopped, err := h.sup.Stop(h.ctx(), "inplace", 5*time.Second)
	if err != nil || stopped.State != messages.StateExited {
		t.Fatalf("Stop = %+v, %v", stopped, err)
	}
	if len(liveChildren(st.PID)) != 0 {
		t.Error("a guest outlived the stop")
	}
}
