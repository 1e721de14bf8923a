package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// The tests here put the home on a real, small tmpfs and fill it: the
// writes of state.json fail with ENOSPC, as they do on a full disk. The
// guests are quiet: console.log lives on the same filesystem.

// guestOf returns the first child of the shim (the guest's process).
func guestOf(t *testing.T, shim int) int {
	t.Helper()
	var kids []string
	eventually(t, "the shim's guest to exist", func() bool {
		// Any of the shim's threads may have forked it.
		kids = nil
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", shim))
		for _, task := range tasks {
			raw, _ := os.ReadFile(task)
			kids = append(kids, strings.Fields(string(raw))...)
		}
		return len(kids) > 0
	})
	pid, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// failedWrites returns how many writes of the box's state.json have failed
// in a row, and the newest record handed to the writer.
func failedWrites(sup *Supervisor, id string) (int, messages.StateRecord) {
	sup.core.mu.Lock()
	e := sup.core.entries[id]
	sup.core.mu.Unlock()
	if e == nil {
		return 0, messages.StateRecord{}
	}
	rec, _ := e.persist.latestRecord()
	e.persist.mu.Lock()
	defer e.persist.mu.Unlock()
	return e.persist.failures, rec
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

// TestStopOnAFullDisk: with the home on a full tmpfs, a Stop still stops the
// box; its reply carries the final status and ErrPersist; the supervisor's
// status is the truth meanwhile; and once space is freed the retried write
// lands and state.json holds the exit (issue: stop returned 0, and the exit
// record was lost).
func TestStopOnAFullDisk(t *testing.T) {
	t.Parallel()
	disk := testutil.MountSmallDisk(t, "2m")
	ts := newTestSup(t, func(c *Config) { c.Home = filepath.Join(disk.Dir, "home") })
	st, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "quiet", Spec: spec("/bin/sleep", "300")})
	if err != nil {
		t.Fatal(err)
	}
	shim := st.PID
	box, _ := ts.sup.core.home.Box("quiet")
	disk.Fill()

	st, err = ts.sup.Stop(ts.ctx(), "quiet", 10*time.Second)
	if !errors.Is(err, messages.ErrPersist) {
		t.Fatalf("Stop on a full disk = %v; want ErrPersist", err)
	}
	if st.State != messages.StateExited || st.LastExit == nil || st.PID != 0 {
		t.Fatalf("Stop on a full disk answered %+v; want the final status (exited, with its exit) beside ErrPersist", st)
	}
	if alive(shim) {
		t.Fatalf("the shim %d still runs after Stop", shim)
	}
	if st, err := ts.sup.Status(ts.ctx(), "quiet"); err != nil || st.State != messages.StateExited || st.LastExit == nil {
		t.Fatalf("Status while the write fails = %+v, %v; want the in-memory truth: exited", st, err)
	}
	if rec, err := box.ReadState(); err != nil || rec.State != messages.StateRunning {
		t.Fatalf("state.json while the disk is full = %+v, %v; want the last record that landed (running)", rec, err)
	}

	disk.Free()
	eventually(t, "the retried write of the exit to land", func() bool {
		rec, err := box.ReadState()
		return err == nil && rec.State == messages.StateExited && rec.LastExit != nil && rec.Identity.PID == 0
	})
	if n, _ := failedWrites(ts.sup, "quiet"); n != 0 {
		t.Fatalf("%d failed writes counted after the write landed", n)
	}
}

// TestRestartWaitsForTheExitToBeRecorded: a restart-always box whose guest
// dies while the disk is full does not start a new generation while the
// exit is unrecorded (its intent cannot be written), and does once space
// is freed; state.json then holds the exit (issue: a restart-always box
// restarted, and after freeing space state.json still named a dead shim).
func TestRestartWaitsForTheExitToBeRecorded(t *testing.T) {
	t.Parallel()
	disk := testutil.MountSmallDisk(t, "2m")
	ts := newTestSup(t, func(c *Config) { c.Home = filepath.Join(disk.Dir, "home") })
	always := messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: -1, InitialBackoff: -1}
	st, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "phoenix", Spec: spec("/bin/sleep", "300"), Restart: always})
	if err != nil {
		t.Fatal(err)
	}
	home, box := ts.sup.Home(), func() layout.Box { b, _ := ts.sup.core.home.Box("phoenix"); return b }()
	guest := guestOf(t, st.PID)
	disk.Fill()
	if err := syscall.Kill(guest, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	// The exit is judged and a restart granted at once. The shim asked to
	// restart its guest in place, but the exit's record cannot land, so it
	// is told to end; the new generation's intent is handed to the writer,
	// which fails, retries, and fails again: all that while, nothing may be
	// spawned.
	var before int
	eventually(t, "the new generation's intent to be handed to the writer", func() bool {
		n, rec := failedWrites(ts.sup, "phoenix")
		before = n
		return rec.Generation == st.Generation+1 && rec.State == messages.StateStarting && rec.LastExit != nil
	})
	eventually(t, "two more failed writes of the intent", func() bool {
		n, _ := failedWrites(ts.sup, "phoenix")
		return n >= before+2
	})
	if left := shimsOfHome(home); len(left) > 0 {
		t.Fatalf("shims %v run while the previous exit is unrecorded", left)
	}
	now, err := ts.sup.Status(ts.ctx(), "phoenix")
	if err != nil || now.PID != 0 || now.State != messages.StateStarting {
		t.Fatalf("Status while the intent is unwritten = %+v, %v; want starting with no process", now, err)
	}
	if rec, err := box.ReadState(); err != nil || rec.Generation != st.Generation || rec.State != messages.StateRunning {
		t.Fatalf("state.json on the full disk = %+v, %v; want generation %d still running", rec, err, st.Generation)
	}

	disk.Free()
	eventually(t, "the new generation to run once its intent landed", func() bool {
		now, err = ts.sup.Status(ts.ctx(), "phoenix")
		return err == nil && now.State == messages.StateRunning && now.Generation == st.Generation+1
	})
	eventually(t, "state.json to hold the new generation and the previous exit", func() bool {
		rec, err := box.ReadState()
		return err == nil && rec.Generation == now.Generation && rec.State == messages.StateRunning &&
			rec.Identity.PID == now.PID && rec.LastExit != nil && rec.Restarts == 1
	})
}

// TestSupervisorRestartAfterAFullDiskOrphansNothing: a restart whose
// "running" could not be written (the disk filled between the spawn and
// the ready byte), then a supervisor that goes away while the disk is
// still full: the next supervisor, once space is freed, finds the box's
// live shim through the intent on disk and adopts it. The box is not
// failed and no shim is orphaned (issue: after a supervisor restart the box
// was failed and its live shim orphaned).
func TestSupervisorRestartAfterAFullDiskOrphansNothing(t *testing.T) {
	t.Parallel()
	disk := testutil.MountSmallDisk(t, "2m")
	home := filepath.Join(disk.Dir, "home")
	// Ready results of the second generation are held until the disk is
	// full.
	g := &gate{decide: func(box string, ev lifecycle.Event, send func(lifecycle.Event), g *gate) bool {
		if r, ok := ev.(lifecycle.Ready); ok && r.Gen == 2 {
			g.hold(box, ev, send)
			return true
		}
		return false
	}}
	log := &testutil.SyncBuffer{}
	logger := logrus.New()
	logger.SetOutput(log)
	logger.SetLevel(logrus.DebugLevel)
	cfg := Config{Home: home, ShimBinary: testShim, Logger: logger, hooks: g.hooks()}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	first, err := NewSupervisor(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	firstClosed := false
	t.Cleanup(func() {
		if !firstClosed {
			_ = first.Shutdown(context.Background(), StopAll)
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", log.String())
		}
	})
	// A delay, however short, makes the restart a new generation (a new
	// shim) rather than a restart in place.
	always := messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: -1, InitialBackoff: time.Nanosecond, NoJitter: true}
	st, err := first.Start(ctx, messages.StartBox{ID: "phoenix", Spec: spec("/bin/sleep", "300"), Restart: always, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(guestOf(t, st.PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	isReady := func(h heldEvent) bool { _, ok := h.ev.(lifecycle.Ready); return ok }
	eventually(t, "the second generation's ready byte", func() bool { return g.heldCount(isReady) == 1 })
	disk.Fill()
	g.release(isReady)
	var live messages.BoxStatus
	eventually(t, "the second generation to run, unrecorded", func() bool {
		n, _ := failedWrites(first, "phoenix")
		live, err = first.Status(ctx, "phoenix")
		return n > 0 && err == nil && live.State == messages.StateRunning && live.Generation == 2
	})
	err = first.Shutdown(ctx, LeaveRunning)
	firstClosed = true
	if !errors.Is(err, messages.ErrPersist) {
		t.Fatalf("Shutdown with an unwritten record = %v; want ErrPersist", err)
	}
	if !alive(live.PID) {
		t.Fatalf("the detached box's shim %d did not outlive its supervisor", live.PID)
	}

	disk.Free()
	second := newTestSup(t, func(c *Config) { c.Home = home })
	st, err = second.sup.Status(second.ctx(), "phoenix")
	if err != nil || st.State != messages.StateRunning || st.PID != live.PID {
		t.Fatalf("after a supervisor restart: %+v, %v; want running with the live shim %d adopted", st, err, live.PID)
	}
	if shims := shimsOfHome(home); len(shims) != 1 || shims[0] != live.PID {
		t.Fatalf("shims of the home %v; want only the adopted %d", shims, live.PID)
	}
}
