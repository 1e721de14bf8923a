package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modes runs a scenario without a supervisor (every command opens the home
// in-process) and through a running boxsup supervise (every command goes
// through its control socket): the results must be the same.
func modes(t *testing.T, scenario func(t *testing.T, e *env)) {
	t.Run("local", func(t *testing.T) {
		scenario(t, newEnv(t))
	})
	t.Run("supervised", func(t *testing.T) {
		e := newSupervisedEnv(t)
		scenario(t, e)
		// The supervisor holds the home lock, so a command that did not
		// go through its socket would have failed: the log proves it.
		if _, ok := e.sup.logLine("control request served"); !ok {
			t.Error("boxsup supervise served no control request")
		}
	})
}

// TestRunDetachedPsStopRm is the basic life of a detached box.
func TestRunDetachedPsStopRm(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		id := e.runDetached("web", nil, "exec sleep 60")
		if id != "web" {
			t.Fatalf("run -d printed %q, want the ID web", id)
		}
		r := e.must("ps", "--format", "json")
		var raw []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 1 {
			t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
		}
		for _, key := range []string{"id", "state", "pid", "restarts", "exit_code", "signal", "reason", "started_at", "cpu_percent", "memory_bytes"} {
			if _, ok := raw[0][key]; !ok {
				t.Errorf("ps --format json lacks %q: %v", key, raw[0])
			}
		}
		row := e.ps()["web"]
		if row.State != "running" || row.PID <= 0 || row.ExitCode != nil || row.StartedAt == nil || row.MemoryBytes == 0 {
			t.Fatalf("ps: %+v, want running with a pid, memory and no exit code", row)
		}
		if !processAlive(row.PID) {
			t.Fatalf("ps reports pid %d, which is not alive", row.PID)
		}
		table := e.must("ps").stdout
		if !strings.HasPrefix(table, "ID ") || !strings.Contains(table, "web") || !strings.Contains(table, "running") {
			t.Fatalf("ps table:\n%s", table)
		}
		for _, col := range []string{"ID", "STATE", "PID", "RESTARTS", "CPU%", "MEM", "UPTIME", "EXIT"} {
			if !strings.Contains(strings.SplitN(table, "\n", 2)[0], col) {
				t.Errorf("ps table header lacks %s", col)
			}
		}

		if out := e.must("stop", "--timeout", "5s", "web").stdout; out != "web\n" {
			t.Fatalf("stop printed %q, want \"web\\n\"", out)
		}
		if processAlive(row.PID) {
			t.Fatalf("shim %d still alive after stop returned", row.PID)
		}
		if out := e.must("ps", "--format", "json").stdout; strings.TrimSpace(out) != "[]" {
			t.Fatalf("ps without -a lists a stopped box: %s", out)
		}
		stopped := e.ps()["web"]
		if stopped.State != "exited" || stopped.PID != 0 || stopped.Signal != "SIGTERM" || stopped.ExitCode == nil || *stopped.ExitCode != 143 {
			t.Fatalf("ps -a after stop: %+v, want exited, pid 0, SIGTERM (143)", stopped)
		}

		if out := e.must("start", "web").stdout; out != "web\n" {
			t.Fatalf("start printed %q, want \"web\\n\"", out)
		}
		restarted := e.ps()["web"]
		if restarted.State != "running" || restarted.PID <= 0 || restarted.PID == row.PID || !processAlive(restarted.PID) {
			t.Fatalf("ps after start: %+v, want running under a new, live shim (the first was pid %d)", restarted, row.PID)
		}
		e.must("stop", "web")

		if out := e.must("rm", "web").stdout; out != "web\n" {
			t.Fatalf("rm printed %q", out)
		}
		if len(e.ps()) != 0 {
			t.Fatalf("ps -a after rm: %v", e.ps())
		}
		if _, err := os.Stat(filepath.Join(e.home, "boxes", "web")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("box directory still there after rm: %v", err)
		}
	})
}

// TestKillSignalLogsMetricsRm covers the remaining box commands.
func TestKillSignalLogsMetricsRm(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		hup := filepath.Join(t.TempDir(), "hup")
		e.runDetached("trap", nil, `trap 'echo hup >> `+hup+`' HUP; echo started; while :; do sleep 0.05; done`)
		e.runDetached("victim", nil, "exec sleep 60")

		if r := e.boxsup("rm", "trap"); r.code != 1 || !strings.Contains(r.stderr, "busy") {
			t.Fatalf("rm of a running box: %s; want exit 1 and busy", r)
		}
		// The guest prints "started" once its trap is installed: a SIGHUP
		// before that would end it.
		eventually(t, "the guest's trap to be installed", func() bool {
			return e.must("logs", "trap").stdout == "started\n"
		})
		if out := e.must("kill", "--signal", "HUP", "trap").stdout; out != "trap\n" {
			t.Fatalf("kill --signal HUP printed %q", out)
		}
		eventually(t, "the HUP trap to run", func() bool {
			b, _ := os.ReadFile(hup)
			return string(b) == "hup\n"
		})

		m := e.must("metrics", "--format", "json", "trap", "victim").stdout
		var samples []struct {
			ID          string  `json:"id"`
			PID         int     `json:"pid"`
			MemoryBytes uint64  `json:"memory_bytes"`
			DiskBytes   uint64  `json:"disk_bytes"`
			Processes   int     `json:"processes"`
			Uptime      float64 `json:"uptime_seconds"`
		}
		if err := json.Unmarshal([]byte(m), &samples); err != nil || len(samples) != 2 {
			t.Fatalf("metrics --format json: %v\n%s", err, m)
		}
		for _, s := range samples {
			if s.PID <= 0 || s.MemoryBytes == 0 || s.DiskBytes == 0 || s.Processes < 2 || s.Uptime <= 0 {
				t.Errorf("metrics sample %+v: want a pid, memory, disk, uptime and at least shim and guest", s)
			}
		}
		if table := e.must("metrics").stdout; !strings.Contains(table, "victim") || !strings.Contains(table, "PROCS") {
			t.Fatalf("metrics table:\n%s", table)
		}

		if out := e.must("kill", "victim").stdout; out != "victim\n" {
			t.Fatalf("kill printed %q", out)
		}
		// A shim this supervisor spawned reports SIGKILL; one it adopted
		// (local mode: every command is a new supervisor) leaves no exit
		// record when SIGKILLed, so its status is unknown.
		if row := e.ps()["victim"]; row.State != "exited" || row.PID != 0 || (row.Signal != "SIGKILL" && row.ExitCode != nil) {
			t.Fatalf("after kill: %+v, want exited by SIGKILL or with an unknown status", row)
		}
		if r := e.boxsup("metrics", "victim"); r.code != 1 || !strings.Contains(r.stderr, "not running") {
			t.Fatalf("metrics of a stopped box: %s", r)
		}
		if out := e.must("rm", "-f", "trap", "victim").stdout; !strings.Contains(out, "trap\n") || !strings.Contains(out, "victim\n") {
			t.Fatalf("rm -f printed %q", out)
		}
		if len(e.ps()) != 0 {
			t.Fatalf("boxes left after rm -f: %v", e.ps())
		}
	})
}

// TestUnknownAndInvalidIDs: every command names the bad ID and exits 1.
func TestUnknownAndInvalidIDs(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		for _, args := range [][]string{
			{"stop", "nope"}, {"start", "nope"}, {"kill", "nope"}, {"kill", "--signal", "HUP", "nope"}, {"rm", "nope"},
			{"logs", "nope"}, {"metrics", "nope"},
		} {
			r := e.boxsup(args...)
			if r.code != 1 || !strings.Contains(r.stderr, `box not found: "nope"`) {
				t.Errorf("boxsup %v: %s; want exit 1 naming \"nope\"", args, r)
			}
		}
		for _, args := range [][]string{
			{"stop", "../etc"}, {"rm", "../etc"}, {"logs", "../etc"}, {"run", "--name", "../etc", "--", "true"},
		} {
			r := e.boxsup(args...)
			if r.code != 1 || !strings.Contains(r.stderr, `invalid box id: "../etc"`) {
				t.Errorf("boxsup %v: %s; want exit 1 and an invalid-ID message", args, r)
			}
		}
		// One bad ID among good ones: the good one is still handled.
		e.runDetached("good", nil, "exec sleep 60")
		r := e.boxsup("stop", "good", "nope")
		if r.code != 1 || r.stdout != "good\n" || !strings.Contains(r.stderr, `"nope"`) {
			t.Errorf("stop good nope: %s", r)
		}
		if _, err := os.Stat(filepath.Join(e.home, "boxes", "nope")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a failed command created a box directory: %v", err)
		}
	})
}

// TestUsageErrors: command-line mistakes, bad flag values included, exit 2
// with a message.
func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"stop"}, 2, "requires at least 1 arg"},
		{[]string{"ps", "--bogus"}, 2, "unknown flag"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"run", "--restart", "sometimes", "--", "true"}, 2, `restart mode "sometimes"`},
		{[]string{"run", "--stop-timeout", "soon", "--", "true"}, 2, "invalid argument"},
		{[]string{"run", "--stop-timeout", "-1s", "--", "true"}, 2, "must not be negative"},
		{[]string{"run", "--name", "", "--", "true"}, 2, "--name: must not be empty"},
		{[]string{"run", "-d", "--rm", "--", "true"}, 2, "--rm cannot be combined with -d"},
		{[]string{"run", "--secret-env", "SHORT=abc", "--", "true"}, 1, "at least 4 bytes"},
		{[]string{"stop", "--timeout", "-1s", "x"}, 2, "must not be negative"},
		{[]string{"ps", "--format", "yaml"}, 2, `--format "yaml"`},
		{[]string{"--log-level", "loud", "ps"}, 2, "log level"},
		{[]string{"run", "--secret-env", "UNSET_E2E_SECRET", "--", "true"}, 2, "UNSET_E2E_SECRET: not set"},
		{[]string{"demo", "--boxes", "1"}, 2, "--boxes 1"},
	} {
		r := e.boxsup(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || !strings.HasPrefix(r.stderr, "boxsup: ") {
			t.Errorf("boxsup %v: %s; want exit %d and %q", tc.args, r, tc.code, tc.want)
		}
	}
}

// TestLogsFollowAndRestartNote: logs -f streams until the box exits; run -d
// with a restart policy warns when no supervisor will apply it; --shim is
// refused when a supervisor (with its own shim) serves the home.
func TestLogsFollowAndRestartNote(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		e.runDetached("talk", nil, "echo one; sleep 0.3; echo two")
		if out := e.must("logs", "-f", "talk").stdout; out != "one\ntwo\n" {
			t.Fatalf("logs -f printed %q, want both lines", out)
		}
		if row := e.ps()["talk"]; row.State != "exited" {
			t.Fatalf("logs -f returned while the box is %s", row.State)
		}

		r := e.must("run", "-d", "--name", "pol", "--restart", "always", "-e", markEnv, "--", "/bin/sh", "-c", "exec sleep 60")
		const note = "restart policy applies only while a supervisor runs"
		if local := e.sup == nil; local != strings.Contains(r.stderr, note) {
			t.Fatalf("run -d --restart always (local=%v): stderr %q", local, r.stderr)
		}
		r = e.boxsup("--shim", shimBin, "run", "-d", "-e", markEnv, "--", "/bin/true")
		if e.sup != nil && (r.code != 1 || !strings.Contains(r.stderr, "--shim cannot be used while a supervisor serves this home")) {
			t.Fatalf("--shim through a supervisor: %s", r)
		}
		if e.sup == nil && r.code != 0 {
			t.Fatalf("--shim without a supervisor: %s", r)
		}
	})
}
