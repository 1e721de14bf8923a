package main

import (
	"syscall"
	"testing"
)

// TestASIGKILLedShimShows137: a shim that somebody SIGKILLs (not boxsup: it
// leaves no exit record) is reported by the supervisor that owns it with
// its wait status: exit_code 137 and signal SIGKILL, not null (issue: its
// wait status was known, yet ps showed exit_code null). Through supervise,
// and as a foreground run without one, whose exit code says the same.
func TestASIGKILLedShimShows137(t *testing.T) {
	t.Run("supervised", func(t *testing.T) {
		e := newSupervisedEnv(t)
		id := e.runDetached("victim", nil, "exec sleep 300")
		pid := e.ps()[id].PID
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
	})
	t.Run("foreground", func(t *testing.T) {
		e := newEnv(t)
		// The guest kills its own shim (its parent).
		r := e.boxsup("run", "--name", "selfkill", "-e", markEnv, "--", "/bin/sh", "-c", "kill -KILL $PPID; sleep 60")
		if r.code != 137 {
			t.Fatalf("a foreground run whose shim was SIGKILLed: %s; want exit 137", r)
		}
		if row := e.ps()["selfkill"]; row.ExitCode == nil || *row.ExitCode != 137 || row.Signal != "SIGKILL" {
			t.Fatalf("ps after the shim was SIGKILLed: %+v; want exit_code 137 and signal SIGKILL", row)
		}
	})
}
