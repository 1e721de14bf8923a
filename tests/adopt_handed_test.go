package tests

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// spawnForeignShim starts the reference shim for an existing box the way
// another tool would (shimproc, detached, no boxsup cgroup) and lets go of
// it: the test process stays its parent, but nothing here watches it.
func spawnForeignShim(h *harness, id string) procID {
	h.t.Helper()
	home, err := layout.Open(h.home)
	if err != nil {
		h.t.Fatal(err)
	}
	box, err := home.Box(id)
	if err != nil {
		h.t.Fatal(err)
	}
	spec := h.sleepSpec()
	spec.Detach, spec.Engine = true, messages.EngineProcess
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	sh, err := shimproc.Spawn(ctx, shimproc.SpawnRequest{Box: box, Binary: shimBinary, Spec: spec, Cgroup: shimproc.CgroupOff})
	if err != nil {
		h.t.Fatalf("spawning a shim for %s by hand: %v", id, err)
	}
	p := h.procs.track(sh.PID(), "hand-spawned shim of "+id)
	_ = sh.Close() // the shim keeps running; the supervisor is to take it over
	return p
}

// startUnrelated starts a process that is no shim and is killed at the end.
func startUnrelated(t *testing.T) *exec.Cmd {
	t.Helper()
	return testutil.StartChild(t, "/bin/sleep", "300")
}

// requireUntouched fails unless cmd's process is still running: it was not
// signalled (a wait that finds it exited tells how it ended).
func requireUntouched(t *testing.T, what string, cmd *exec.Cmd) {
	t.Helper()
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WNOHANG, nil)
	if err != nil || pid != 0 {
		t.Errorf("%s: the unrelated process %d ended (%v, err %v); it must never be signalled", what, cmd.Process.Pid, ws, err)
	}
}

// TestAdoptAHandedOverShim: an orchestrator hands over a shim that another
// tool started for a box at rest (Supervisor.Adopt): it is verified and
// adopted, then stops like any box. A pid that is not a shim of the box (a
// plain process, another box's shim) is refused with ErrIdentityMismatch
// and never signalled (issue: messages.Adopt was exported but unhandled).
func TestAdoptAHandedOverShim(t *testing.T) {
	h := newHarness(t)
	h.startSleeper("handed")
	other := h.startSleeper("other")
	if _, err := h.sup.Stop(h.ctx(), "handed", 10*time.Second); err != nil {
		t.Fatal(err)
	}

	sleeper := startUnrelated(t)
	for what, pid := range map[string]int{"a plain process": sleeper.Process.Pid, "another box's shim": other.PID} {
		st, err := h.sup.Adopt(h.ctx(), "handed", pid)
		requireCode(t, "Adopt of "+what, err, messages.ErrIdentityMismatch)
		if st.State != messages.StateExited {
			t.Errorf("Adopt of %s left the box %s, want it exited as before", what, st.State)
		}
	}
	requireUntouched(t, "after a refused Adopt", sleeper)
	if st := h.status("other"); st.State != messages.StateRunning || st.PID != other.PID {
		t.Errorf("the other box after a refused Adopt of its shim: %+v", st)
	}

	shim := spawnForeignShim(h, "handed")
	st, err := h.sup.Adopt(h.ctx(), "handed", shim.PID)
	if err != nil || st.State != messages.StateRunning || st.PID != shim.PID {
		t.Fatalf("Adopt of a shim of the box = %+v, %v; want running as pid %d", st, err, shim.PID)
	}
	if _, err := h.sup.Adopt(h.ctx(), "handed", shim.PID); !errors.Is(err, messages.ErrBusy) {
		t.Errorf("a second Adopt of a running box = %v, want ErrBusy", err)
	}
	if m, err := h.sup.Metrics(h.ctx(), "handed"); err != nil || m.PID != shim.PID || m.Processes < 2 {
		t.Errorf("Metrics of the adopted box: %+v, %v", m, err)
	}
	stopped, err := h.sup.Stop(h.ctx(), "handed", 10*time.Second)
	if err != nil || stopped.State != messages.StateExited || stopped.LastExit == nil {
		t.Fatalf("Stop of the adopted box = %+v, %v", stopped, err)
	}
	if !shim.gone() {
		t.Errorf("Stop of the adopted box answered while its shim (pid %d) still existed", shim.PID)
	}
	requireUntouched(t, "at the end", sleeper)
}
