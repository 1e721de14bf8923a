package tests

import (
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestStartMetricsStopCooperative walks one box through its ordinary life:
// Start answers when it is ready, Metrics sees the shim and its guest, a
// cooperative Stop answers after the processes are gone with the SIGTERM
// exit, and the events come in lifecycle order.
func TestStartMetricsStopCooperative(t *testing.T) {
	h := newHarness(t)
	st := h.startSleeper("coop")

	tree := h.procs.trackTree(st.PID, "shim of coop")
	if len(tree) == 0 {
		t.Fatalf("shim pid %d is not running right after Start answered", st.PID)
	}
	shim := tree[0].procID
	guest := findGuest(t, tree, "/bin/sleep")

	started := waitForEvent[messages.BoxStarted](t, h.events, "coop", 1)[0]
	ready := waitForEvent[messages.BoxReady](t, h.events, "coop", 1)[0]
	if started.PID != st.PID || ready.PID != st.PID {
		t.Errorf("BoxStarted pid %d, BoxReady pid %d, Start reply pid %d: want all equal", started.PID, ready.PID, st.PID)
	}
	if started.Generation != st.Generation || ready.Generation != st.Generation {
		t.Errorf("event generations %d/%d, reply generation %d", started.Generation, ready.Generation, st.Generation)
	}

	m, err := h.sup.Metrics(h.ctx(), "coop")
	if err != nil {
		t.Fatalf("Metrics: %v", err)
	}
	if m.ID != "coop" || m.PID != st.PID {
		t.Errorf("Metrics id %q pid %d, want coop pid %d", m.ID, m.PID, st.PID)
	}
	if m.MemoryBytes == 0 {
		t.Errorf("Metrics.MemoryBytes = 0, want the RSS of shim and guest")
	}
	if m.Processes < 2 {
		t.Errorf("Metrics.Processes = %d, want >= 2 (shim and guest)", m.Processes)
	}
	if maxCPU := 100 * float64(runtime.NumCPU()); m.CPUPercent < 0 || m.CPUPercent > maxCPU {
		t.Errorf("Metrics.CPUPercent = %v, want within [0, %v]", m.CPUPercent, maxCPU)
	}
	if m.DiskBytes == 0 {
		t.Errorf("Metrics.DiskBytes = 0, want the size of the box directory (spec.json, state.json at least)")
	}

	stopped, err := h.sup.Stop(h.ctx(), "coop", 10*time.Second)
	// Checked before anything else: the reply must not come before the exit.
	shimGone, guestGone := shim.gone(), guest.gone()
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !shimGone {
		t.Errorf("Stop answered while shim pid %d still existed (alive or unreaped)", shim.PID)
	}
	if !guestGone {
		t.Errorf("Stop answered while guest pid %d still existed", guest.PID)
	}
	if stopped.State != messages.StateExited {
		t.Errorf("Stop reply state %q, want exited", stopped.State)
	}
	if stopped.Killed {
		t.Errorf("Stop reply Killed = true for a guest that obeys SIGTERM")
	}
	if ex := stopped.LastExit; ex == nil {
		t.Errorf("Stop reply has no LastExit")
	} else if ex.Signal != "SIGTERM" && ex.ExitCode != 128+15 {
		t.Errorf("Stop reply LastExit = %+v, want signal SIGTERM or exit code 143", *ex)
	}

	exited := waitForEvent[messages.BoxExited](t, h.events, "coop", 1)[0]
	if !exited.Requested || exited.PID != st.PID {
		t.Errorf("BoxExited = %+v, want Requested for pid %d", exited, st.PID)
	}
	if got, want := kindsOf(h.events.all(), "coop"), []string{"BoxStarted", "BoxReady", "BoxExited"}; !slices.Equal(got, want) {
		t.Errorf("events for coop: %v, want %v", got, want)
	}
	if st := h.status("coop"); st.State != messages.StateExited || st.PID != 0 {
		t.Errorf("Status after Stop: state %q pid %d, want exited with no pid", st.State, st.PID)
	}
	_, err = h.sup.Metrics(h.ctx(), "coop")
	requireCode(t, "Metrics of a stopped box", err, messages.ErrNotRunning)

	again, err := h.sup.Stop(h.ctx(), "coop", time.Second)
	if err != nil || again.State != messages.StateExited {
		t.Errorf("second Stop: state %q err %v, want exited at once", again.State, err)
	}
}

// TestStopKillsGuestIgnoringSIGTERM stops a guest that ignores SIGTERM (and
// whose children inherit that): after the stop timeout the whole tree is
// SIGKILLed, the reply says so, and nothing of the box survives.
func TestStopKillsGuestIgnoringSIGTERM(t *testing.T) {
	h := newHarness(t)
	tree := startStubborn(h, "stubborn", 0)

	const timeout = 300 * time.Millisecond
	began := time.Now()
	stopped, err := h.sup.Stop(h.ctx(), "stubborn", timeout)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !stopped.Killed {
		t.Errorf("Stop reply Killed = false, want true (the guest ignores SIGTERM)")
	}
	if ex := stopped.LastExit; ex == nil {
		t.Errorf("Stop reply has no LastExit")
	} else if ex.Signal != "SIGKILL" && !strings.Contains(ex.Reason, "timeout") {
		t.Errorf("Stop reply LastExit = %+v, want signal SIGKILL or a reason naming the timeout", *ex)
	}
	if stopped.State != messages.StateExited {
		t.Errorf("Stop reply state %q, want exited", stopped.State)
	}
	if took < timeout {
		t.Errorf("Stop answered after %v, before its %v timeout could expire", took, timeout)
	}
	if !tree[0].gone() {
		t.Errorf("Stop answered while shim pid %d still existed", tree[0].PID)
	}
	exited := waitForEvent[messages.BoxExited](t, h.events, "stubborn", 1)[0]
	if !exited.Requested {
		t.Errorf("BoxExited.Requested = false after a Stop")
	}
	eventually(t, "every process of the box to be gone", func() (bool, string) {
		left := h.procs.leftovers()
		return len(left) == 0, strings.Join(left, "; ")
	})
}

// stubbornLoop ignores SIGTERM, and so do the sleeps it forks (an ignored
// signal stays ignored across exec).
const stubbornLoop = `trap "" TERM; while :; do sleep 0.2; done`

// startStubborn starts a box running stubbornLoop and returns its tree once
// the trap is in place.
func startStubborn(h *harness, id string, stopTimeout time.Duration) []procInfo {
	h.t.Helper()
	st := h.start(messages.StartBox{ID: id, Spec: h.spec("/bin/sh", "-c", stubbornLoop), StopTimeout: stopTimeout})
	// Ready means the shell was exec'd, not that it has run its trap yet: wait
	// for the loop's first sleep, which comes after the trap.
	var tree []procInfo
	eventually(h.t, "the guest loop to run a sleep", func() (bool, string) {
		tree = h.procs.trackTree(st.PID, "shim of "+id)
		for _, p := range tree {
			if len(p.Cmdline) > 0 && p.Cmdline[0] == "sleep" {
				return true, ""
			}
		}
		return false, describeTree(tree)
	})
	return tree
}

// findGuest returns the shim's direct child running exe.
func findGuest(t *testing.T, tree []procInfo, exe string) procID {
	t.Helper()
	for _, p := range tree[1:] {
		if p.PPID == tree[0].PID && len(p.Cmdline) > 0 && filepath.Base(p.Cmdline[0]) == filepath.Base(exe) {
			return p.procID
		}
	}
	t.Fatalf("no guest %s under shim pid %d: %s", exe, tree[0].PID, describeTree(tree))
	return procID{}
}

func describeTree(tree []procInfo) string {
	parts := make([]string, 0, len(tree))
	for _, p := range tree {
		parts = append(parts, p.String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}
