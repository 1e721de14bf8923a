package main

import (
	"strconv"
	"strings"
	"testing"
)

// TestStopTimeoutZeroKillsAtOnce: --timeout 0 means no grace (a box that
// ignores SIGTERM is killed at once, not after its own 60 s stop timeout),
// and the SIGKILLed box shows exit code 137 with signal SIGKILL.
func TestStopTimeoutZeroKillsAtOnce(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		id := e.runDetached("stubborn", []string{"--stop-timeout", "60s"}, "trap '' TERM; while :; do sleep 1; done")
		if r := e.must("stop", "--timeout", "0", id); r.stdout != id+"\n" {
			t.Fatalf("stop --timeout 0: %s", r)
		}
		row := e.ps()[id]
		if row.State != "exited" || row.Signal != "SIGKILL" || row.ExitCode == nil || *row.ExitCode != 137 {
			code := "null"
			if row.ExitCode != nil {
				code = strconv.Itoa(*row.ExitCode)
			}
			t.Errorf("after stop --timeout 0: state %s, signal %q, exit_code %s; want exited, SIGKILL, 137", row.State, row.Signal, code)
		}
		e.must("rm", id)
	})
}

// TestAFailedStartSaysTheIDStaysTaken: the error of a failed start tells
// that the ID is kept until rm, and run -d leaves no running box.
func TestAFailedStartSaysTheIDStaysTaken(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		r := e.boxsup("run", "-d", "--name", "broken", "--", "/nonexistent/program")
		if r.code != 1 || !strings.Contains(r.stderr, "`boxsup rm broken`") {
			t.Fatalf("run -d of a missing program: %s; want exit 1 and the rm hint", r)
		}
		row, ok := e.ps()["broken"]
		if !ok || row.PID != 0 || (row.State != "failed" && row.State != "exited") {
			t.Errorf("after the failed start: %+v (present %v); want a box at rest", row, ok)
		}
		if row.State == "failed" {
			// The table says why under it, as for a box waiting to restart.
			if table := e.must("ps", "-a"); !strings.Contains(table.stdout, "\nbroken: failed: ") || !strings.Contains(table.stdout, "/nonexistent/program") {
				t.Errorf("ps -a of a failed box does not say why:\n%s", table.stdout)
			}
		}
		e.must("rm", "broken")
	})
}
