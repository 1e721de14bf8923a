package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// TestBadInputIsRejectedCleanly: every bad request through the facade gets
// its typed error, leaves nothing on disk, and the supervisor goes on
// serving other boxes.
func TestBadInputIsRejectedCleanly(t *testing.T) {
	h := newHarness(t)
	missingShim := filepath.Join(t.TempDir(), "no-such-shim")
	notExecutable := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("invalid IDs", func(t *testing.T) {
		for _, id := range []string{"../x", "", "-a", strings.Repeat("a", 65), ".", "..", "a/b", "a b", "x\x00y"} {
			_, err := h.sup.Start(h.ctx(), messages.StartBox{ID: id, Spec: h.sleepSpec()})
			requireCode(t, "Start("+quote(id)+")", err, messages.ErrInvalidID)
			for op, call := range map[string]func() error{
				"Stop":    func() error { _, err := h.sup.Stop(h.ctx(), id, time.Second); return err },
				"Status":  func() error { _, err := h.sup.Status(h.ctx(), id); return err },
				"Metrics": func() error { _, err := h.sup.Metrics(h.ctx(), id); return err },
				"Remove":  func() error { _, err := h.sup.Remove(h.ctx(), id, true); return err },
			} {
				requireCode(t, op+"("+quote(id)+")", call(), messages.ErrInvalidID)
			}
		}
		if _, err := os.Lstat(filepath.Join(h.home, "x")); err == nil {
			t.Errorf(`Start("../x") created %s`, filepath.Join(h.home, "x"))
		}
		requireNoBoxDirs(t, h)
	})

	t.Run("duplicate ID", func(t *testing.T) {
		first := h.startSleeper("dup")
		_, err := h.sup.Start(h.ctx(), messages.StartBox{ID: "dup", Spec: h.sleepSpec()})
		requireCode(t, "second Start(dup)", err, messages.ErrAlreadyExists)
		if st := h.status("dup"); st.PID != first.PID || st.Generation != first.Generation || st.State != messages.StateRunning {
			t.Errorf("the duplicate Start changed the box: %+v, was %+v", st, first)
		}
		if _, err := h.sup.Stop(h.ctx(), "dup", 10*time.Second); err != nil {
			t.Errorf("Stop(dup): %v", err)
		}
		// An exited box still exists: its ID is taken until it is removed.
		_, err = h.sup.Start(h.ctx(), messages.StartBox{ID: "dup", Spec: h.sleepSpec()})
		requireCode(t, "Start with an exited box's ID", err, messages.ErrAlreadyExists)
		if _, err := h.sup.Remove(h.ctx(), "dup", false); err != nil {
			t.Errorf("Remove(dup): %v", err)
		}
		requireNoBoxDirs(t, h)
	})

	t.Run("bad specs", func(t *testing.T) {
		relConsole := h.sleepSpec()
		relConsole.ConsoleOutput = "console.log"
		// The supervisor reads the box's own console.log and exit.json:
		// paths of the caller's would be written and never read.
		ownConsole := h.sleepSpec()
		ownConsole.ConsoleOutput = "/tmp/boxsup-console-elsewhere.log"
		ownExit := h.sleepSpec()
		ownExit.ExitFile = "/tmp/boxsup-exit-elsewhere.json"
		wrongBoxID := h.sleepSpec()
		wrongBoxID.BoxID = "someone-else"
		badEnv := h.sleepSpec()
		badEnv.GuestEntrypoint.Env = append(badEnv.GuestEntrypoint.Env, "NOEQUALS")
		cases := map[string]messages.StartBox{
			"empty executable":    {ID: "bad", Spec: messages.InstanceSpec{}},
			"relative console":    {ID: "bad", Spec: relConsole},
			"console elsewhere":   {ID: "bad", Spec: ownConsole},
			"exit file elsewhere": {ID: "bad", Spec: ownExit},
			"bad restart mode":    {ID: "bad", Spec: h.sleepSpec(), Restart: messages.RestartPolicy{Mode: "sometimes"}},
			"box_id mismatch":     {ID: "bad", Spec: wrongBoxID},
			"env without value":   {ID: "bad", Spec: badEnv},
			"negative timeout":    {ID: "bad", Spec: h.sleepSpec(), StopTimeout: -time.Second},
			"backoff over cap":    {ID: "bad", Spec: h.sleepSpec(), Restart: messages.RestartPolicy{Mode: messages.RestartAlways, InitialBackoff: time.Minute, MaxBackoff: time.Second}},
			"unconfigured engine": {ID: "bad", Spec: func() messages.InstanceSpec { s := h.sleepSpec(); s.Engine = "firecracker"; return s }()},
		}
		for name, req := range cases {
			_, err := h.sup.Start(h.ctx(), req)
			requireCode(t, name, err, messages.ErrBadSpec)
			if h.boxDirExists("bad") {
				t.Fatalf("%s: a box directory was left behind", name)
			}
		}
		requireNoBoxDirs(t, h)
	})

	t.Run("shim missing for an engine", func(t *testing.T) {
		other := newHarness(t, withConfig(func(c *actors.Config) {
			c.Engines = map[messages.EngineKind]string{messages.EngineLibkrun: missingShim, messages.EngineFirecracker: notExecutable}
		}))
		for engine, path := range map[messages.EngineKind]string{messages.EngineLibkrun: missingShim, messages.EngineFirecracker: notExecutable} {
			spec := other.sleepSpec()
			spec.Engine = engine
			_, err := other.sup.Start(other.ctx(), messages.StartBox{ID: "vm", Spec: spec})
			requireCode(t, "Start with engine "+string(engine), err, messages.ErrShimNotFound)
			if want := "box runner binary not found: " + path; err != nil && !strings.Contains(err.Error(), want) {
				t.Errorf("error %q, want it to contain %q", err, want)
			}
		}
		requireNoBoxDirs(t, other)
		stillServes(t, other, "after-missing-engine")
	})

	t.Run("shim binary missing", func(t *testing.T) {
		noShim := newHarness(t, withConfig(func(c *actors.Config) { c.ShimBinary = missingShim }))
		_, err := noShim.sup.Start(noShim.ctx(), messages.StartBox{ID: "box", Spec: noShim.sleepSpec()})
		requireCode(t, "Start without a shim", err, messages.ErrShimNotFound)
		if err != nil && !strings.Contains(err.Error(), "box runner binary not found:") {
			t.Errorf("error %q, want it to say %q", err, "box runner binary not found:")
		}
		if err != nil && !strings.Contains(err.Error(), missingShim) {
			t.Errorf("error %q does not name the missing path %s", err, missingShim)
		}
		requireNoBoxDirs(t, noShim)
		if list, err := noShim.sup.List(noShim.ctx(), actors.ListOptions{}); err != nil || len(list) != 0 {
			t.Errorf("List after a failed Start: %v, err %v", list, err)
		}
	})

	t.Run("unknown box", func(t *testing.T) {
		_, err := h.sup.Stop(h.ctx(), "nosuch", time.Second)
		requireCode(t, "Stop(nosuch)", err, messages.ErrNotFound)
		_, err = h.sup.Status(h.ctx(), "nosuch")
		requireCode(t, "Status(nosuch)", err, messages.ErrNotFound)
		_, err = h.sup.Metrics(h.ctx(), "nosuch")
		requireCode(t, "Metrics(nosuch)", err, messages.ErrNotFound)
		_, err = h.sup.Kill(h.ctx(), "nosuch")
		requireCode(t, "Kill(nosuch)", err, messages.ErrNotFound)
		_, err = h.sup.Remove(h.ctx(), "nosuch", true)
		requireCode(t, "Remove(nosuch)", err, messages.ErrNotFound)
		requireNoBoxDirs(t, h)
	})

	t.Run("home locked", func(t *testing.T) {
		second, err := actors.NewSupervisor(context.Background(), actors.Config{Home: h.home, ShimBinary: shimBinary, Logger: testLogger(t)})
		if second != nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
				defer cancel()
				_ = second.Shutdown(ctx, actors.LeaveRunning)
			})
		}
		requireCode(t, "second NewSupervisor on a locked home", err, messages.ErrHomeLocked)
		if err != nil && !strings.Contains(err.Error(), "pid") {
			t.Errorf("ErrHomeLocked %q does not name the holder's pid", err)
		}
	})

	stillServes(t, h, "after-bad-input")
}

// stillServes starts and stops a box, to show that the supervisor works.
func stillServes(t *testing.T, h *harness, id string) {
	t.Helper()
	st := h.startSleeper(id)
	stopped, err := h.sup.Stop(h.ctx(), id, 10*time.Second)
	if err != nil || stopped.State != messages.StateExited {
		t.Errorf("Stop(%s): state %q err %v", id, stopped.State, err)
	}
	if st.PID <= 0 {
		t.Errorf("Start(%s): no pid", id)
	}
}

// requireNoBoxDirs fails if the home's boxes directory holds anything but
// the boxes the supervisor lists.
func requireNoBoxDirs(t *testing.T, h *harness) {
	t.Helper()
	list, err := h.sup.List(h.ctx(), actors.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	known := map[string]bool{}
	for _, st := range list {
		known[st.ID] = true
	}
	ents, err := os.ReadDir(filepath.Join(h.home, "boxes"))
	if err != nil {
		t.Fatalf("reading the boxes directory: %v", err)
	}
	for _, e := range ents {
		if !known[e.Name()] {
			t.Errorf("boxes/%s exists but is no box the supervisor knows", e.Name())
		}
	}
}

// quote renders an ID for a failure message, shortening long ones.
func quote(s string) string {
	if len(s) > 20 {
		return fmt.Sprintf("%q…(len %d)", s[:8], len(s))
	}
	return strconv.Quote(s)
}
