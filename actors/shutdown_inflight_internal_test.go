package actors

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// Shutdown while a Start is in flight (issue found by a trial as an
// embedding orchestrator): the box actor was stopped mid-start, the Start
// failed with "retry", and the shim came up anyway with nobody owning it. An
// attached one stayed alive (its keepalive was never closed) and ended a
// zombie. Each test forces one order of Shutdown's request and the start's
// progress with hooks, in both modes.

// inflightGate holds event hold of box "s" until the box actor has taken
// what Shutdown sends it (a stop, or for a detached box under LeaveRunning
// a settle request), so that it meets the start in the phase before that
// event.
type inflightGate struct {
	g       *gate
	stopped chan struct{} // closed when box "s" received Shutdown's request
}

func newInflightGate(hold func(lifecycle.Event) bool) *inflightGate {
	ig := &inflightGate{stopped: make(chan struct{})}
	ig.g = &gate{decide: func(box string, ev lifecycle.Event, send func(lifecycle.Event), g *gate) bool {
		if box == "s" && hold(ev) {
			g.hold(box, ev, send)
			return true
		}
		return false
	}}
	return ig
}

func (ig *inflightGate) hooks() *testHooks {
	h := ig.g.hooks()
	h.received = func(box string, msg any) {
		switch msg.(type) {
		case *stopForShutdown, *settleForShutdown:
			if box == "s" {
				close(ig.stopped)
			}
		}
	}
	return h
}

func TestShutdownStopsAStartInFlight(t *testing.T) {
	t.Parallel()
	heldBeforeSpawn := func(ev lifecycle.Event) bool { _, ok := ev.(lifecycle.Prepared); return ok }
	heldBeforeReady := func(ev lifecycle.Event) bool { r, ok := ev.(lifecycle.Ready); return ok && r.Err == nil }
	for _, tc := range []struct {
		name   string
		hold   func(lifecycle.Event) bool
		mode   ShutdownMode
		detach bool
		// left: the start is seen through and the box left running (a
		// detached box under LeaveRunning); else it is stopped and its
		// Start fails.
		left bool
	}{
		{"before its spawn, StopAll", heldBeforeSpawn, StopAll, false, false},
		{"before its spawn, LeaveRunning, attached", heldBeforeSpawn, LeaveRunning, false, false},
		{"before its spawn, LeaveRunning, detached", heldBeforeSpawn, LeaveRunning, true, true},
		{"awaiting ready, StopAll", heldBeforeReady, StopAll, true, false},
		{"awaiting ready, LeaveRunning, attached", heldBeforeReady, LeaveRunning, false, false},
		{"awaiting ready, LeaveRunning, detached", heldBeforeReady, LeaveRunning, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ig := newInflightGate(tc.hold)
			ts := newTestSup(t, func(c *Config) { c.hooks = ig.hooks() })
			home := ts.sup.Home()
			started := make(chan error, 1)
			go func() {
				_, err := ts.sup.Start(context.Background(), messages.StartBox{ID: "s", Detach: tc.detach, Spec: spec("/bin/sleep", "3600")})
				started <- err
			}()
			eventually(t, "the start reaches the held event", func() bool {
				return ig.g.heldCount(func(heldEvent) bool { return true }) == 1
			})
			// The shim, when the held event comes after its spawn: it must
			// be gone after Shutdown, reaped rather than left a zombie.
			shims := shimsOfHome(home)
			shut := make(chan error, 1)
			go func() { shut <- ts.sup.Shutdown(ts.ctx(), tc.mode) }()
			select {
			case <-ig.stopped:
			case err := <-shut:
				ig.g.release(func(heldEvent) bool { return true })
				t.Fatalf("Shutdown returned (%v) without stopping the box whose start was in flight", err)
			}
			ig.g.release(func(heldEvent) bool { return true })

			if err := <-shut; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			err := <-started
			if tc.left {
				leftRunning(t, home, err)
				return
			}
			if err == nil {
				t.Fatal("Start succeeded, but Shutdown stopped the box before it was ready")
			}
			if errors.Is(err, messages.ErrBusy) {
				t.Errorf("Start: %v; want anything but a suggestion to retry a shut-down supervisor", err)
			}
			if left := shimsOfHome(home); len(left) > 0 {
				t.Errorf("shims left running after Shutdown: %v", left)
			}
			for _, pid := range shims {
				if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
					t.Errorf("shim %d exists after Shutdown (running or not reaped)", pid)
				}
			}
		})
	}
}

// leftRunning checks a detached box whose start Shutdown(LeaveRunning) saw
// through: its Start succeeded, and the next supervisor adopts it running
// (and stops it, so that the test leaves nothing behind).
func leftRunning(t *testing.T, home string, startErr error) {
	t.Helper()
	if startErr != nil {
		t.Fatalf("Start: %v; want the start seen through before LeaveRunning left the box", startErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	next, err := NewSupervisor(ctx, Config{Home: home, ShimBinary: testShim, Logger: quiet})
	if err != nil {
		t.Fatalf("NewSupervisor on the same home: %v", err)
	}
	defer func() {
		if err := next.Shutdown(ctx, StopAll); err != nil {
			t.Errorf("Shutdown of the next supervisor: %v", err)
		}
	}()
	if st, err := next.Status(ctx, "s"); err != nil || st.State != messages.StateRunning {
		t.Errorf("the next supervisor found %+v, %v; want the box running", st, err)
	}
}

// TestSpawnTransitSettleKillsAndReaps: a shim whose spawn result reached no
// box actor is killed with its tree and reaped when the supervisor closes.
func TestSpawnTransitSettleKillsAndReaps(t *testing.T) {
	t.Parallel()
	home, err := layout.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	box, err := home.Box("lost")
	if err != nil {
		t.Fatal(err)
	}
	req := messages.StartBox{ID: "lost", Spec: spec("/bin/sleep", "3600")}
	req.Spec.Engine = messages.EngineProcess
	if err := box.Create(); err != nil {
		t.Fatal(err)
	}
	h, err := shimproc.Spawn(context.Background(), shimproc.SpawnRequest{Box: box, Binary: testShim, Spec: req.Spec, Cgroup: shimproc.CgroupOff})
	if err != nil {
		t.Fatal(err)
	}
	var tr spawnTransit
	tr.put(h, false)
	killed, err := tr.settle(killWait, false)
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	if len(killed) != 1 || killed[0] != h.PID() {
		t.Fatalf("settle killed %v, want [%d]", killed, h.PID())
	}
	select {
	case <-h.Exited():
	default:
		t.Fatal("the shim's exit was not seen")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(h.PID())); err == nil {
		t.Errorf("pid %d still exists (not reaped)", h.PID())
	}
	if again, _ := tr.settle(killWait, false); len(again) != 0 {
		t.Errorf("a second settle killed %v", again)
	}
}

// TestRequestWithADoneContextDoesNothing: Stop, Kill and Remove with a
// context already cancelled return its error and leave the box as it was.
func TestRequestWithADoneContextDoesNothing(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "d", Spec: spec("/bin/sleep", "3600")}); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range map[string]func() error{
		"Stop":   func() error { _, err := ts.sup.Stop(done, "d", 0); return err },
		"Kill":   func() error { _, err := ts.sup.Kill(done, "d"); return err },
		"Remove": func() error { _, err := ts.sup.Remove(done, "d", true); return err },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	st, err := ts.sup.Status(ts.ctx(), "d")
	if err != nil || st.State != messages.StateRunning {
		t.Fatalf("after requests with a cancelled context: %+v, %v; want the box still running", st, err)
	}
}
