package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sleepersLeft lists the live processes of the tests that run sleep arg.
func sleepersLeft(arg string) []string {
	var out []string
	for _, p := range ourProcesses() {
		if f := strings.Fields(p); len(f) == 3 && f[1] == "sleep" && f[2] == arg {
			out = append(out, p)
		}
	}
	return out
}

// TestASIGKILLedShimShows137: a shim that somebody SIGKILLs (not boxsup: it
// leaves no exit record) is reported by the supervisor that owns it with
// its wait status: exit_code 137 and signal SIGKILL, not null (issue: its
// wait status was known, yet ps showed exit_code null). What the guest left
// (a child of the shell, which the dead shim could not sweep) is killed
// with the box. Through supervise, and as a foreground run without one,
// whose exit code says the same.
func TestASIGKILLedShimShows137(t *testing.T) {
	t.Run("supervised", func(t *testing.T) {
		e := newSupervisedEnv(t)
		id := e.runDetached("victim", nil, "sleep 301 & wait")
		pid := e.ps()[id].PID
		eventually(t, "the guest's child to run", func() bool { return len(sleepersLeft("301")) == 1 })
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var row psJSONRow
		eventually(t, "the shim's end to be recorded", func() bool {
			row = e.ps()[id]
			return row.State == "exited"
		})
		if row.ExitCode == nil || *row.ExitCode != 137 || row.Signal != "SIGKILL" {
			t.Fatalf("a SIGKILLed shim: %+v (exit_code %v); want exit_code 137 and signal SIGKILL", row, row.ExitCode)
		}
		eventually(t, "what the guest left to be killed", func() bool { return len(sleepersLeft("301")) == 0 })
	})
	t.Run("foreground", func(t *testing.T) {
		e := newEnv(t)
		// Once the box is running (its shim's ready byte is in, so this is
		// a crash, not a failed start), the guest kills its own shim (its
		// parent) and leaves a child.
		gate := filepath.Join(t.TempDir(), "gate")
		script := fmt.Sprintf("sleep 302 & while [ ! -e %s ]; do sleep 0.01; done; kill -KILL $PPID; wait", gate)
		done := make(chan result, 1)
		go func() {
			done <- e.boxsup("run", "--name", "selfkill", "-e", markEnv, "--", "/bin/sh", "-c", script)
		}()
		eventually(t, "the box to be running", func() bool { return e.ps()["selfkill"].State == "running" })
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.code != 137 {
			t.Fatalf("a foreground run whose shim was SIGKILLed: %s; want exit 137", r)
		}
		if row := e.ps()["selfkill"]; row.ExitCode == nil || *row.ExitCode != 137 || row.Signal != "SIGKILL" {
			t.Fatalf("ps after the shim was SIGKILLed: %+v; want exit_code 137 and signal SIGKILL", row)
		}
		if left := sleepersLeft("302"); len(left) > 0 {
			t.Fatalf("the run returned and left the guest's child running: %v", left)
		}
	})
}
