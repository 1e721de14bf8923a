package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
)

// runInProcess runs boxsup with args in this process, with hooks, and
// returns what it printed and its exit code.
func runInProcess(t *testing.T, hooks appHooks, args ...string) result {
	t.Helper()
	var stdout, stderr testutil.SyncBuffer
	a := &app{stdout: &stdout, stderr: &stderr, hooks: hooks}
	code := a.execute(args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// TestRunRmConsoleOpenedAfterTheBoxEnded forces the order that lost the
// output of `run --rm -- echo hi` through a supervise (about 8 runs in 60
// under load): the box exits and its supervisor is ready to remove it
// before boxsup's console follower has opened the log. The whole console
// is still printed and the box is removed: the supervisor removes it only
// once boxsup has copied the console (in-process, the command itself does).
func TestRunRmConsoleOpenedAfterTheBoxEnded(t *testing.T) {
	// The follower opens the log only once the run is over: through a
	// supervise, once it sent the box's final status and waits for this
	// command's release before removing the box.
	late := appHooks{consoleOpen: func(ended <-chan struct{}) { <-ended }}
	modes(t, func(t *testing.T, e *env) {
		args := []string{"--home", e.home}
		if e.sup == nil {
			args = append(args, "--shim", shimBin)
		}
		args = append(args, "run", "--rm", "-e", markEnv, "--", "/bin/sh", "-c", "echo hi; echo there; exit 4")
		r := runInProcess(t, late, args...)
		if r.code != 4 || r.stdout != "hi\nthere\n" {
			t.Fatalf("run --rm with the console opened after the box ended: %s; want exit 4 and both lines, in order", r)
		}
		if rows := e.ps(); len(rows) != 0 {
			t.Fatalf("--rm left the box behind: %v", rows)
		}
	})
}

// TestRunRmExitCodes: run --rm exits with the box's code, prints its whole
// console and leaves nothing behind, whether the box exits 0, with a code
// or of a signal.
func TestRunRmExitCodes(t *testing.T) {
	modes(t, func(t *testing.T, e *env) {
		for _, c := range []struct {
			script string
			code   int
		}{
			{"echo out; exit 0", 0},
			{"echo out; echo err >&2; exit 42", 42},
			{"echo out; kill -KILL $$", 128 + int(syscall.SIGKILL)},
		} {
			r := e.boxsup("run", "--rm", "-e", markEnv, "--", "/bin/sh", "-c", c.script)
			if r.code != c.code || !strings.Contains(r.stdout, "out\n") {
				t.Errorf("run --rm -- sh -c %q: %s; want exit %d and the console", c.script, r, c.code)
			}
		}
		if rows := e.ps(); len(rows) != 0 {
			t.Fatalf("--rm left boxes behind: %v", rows)
		}
	})
}

// TestRunRmClientKilledMidRun: a run --rm through a supervise whose boxsup
// is SIGKILLed while the box runs leaves no box: the supervisor stops it and
// removes it, the --rm promise kept without the command.
func TestRunRmClientKilledMidRun(t *testing.T) {
	t.Parallel()
	e := newSupervisedEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, boxsupBin, "--home", e.home, "run", "--rm", "--name", "orphan", "-e", markEnv,
		"--", "/bin/sh", "-c", "echo up; exec sleep 60")
	var stdout, stderr testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the box to print", func() bool { return strings.Contains(stdout.String(), "up\n") })
	if row := e.ps()["orphan"]; row.State != "running" {
		t.Fatalf("ps during the run: %+v", row)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	eventually(t, "the supervisor to stop and remove the box of the killed run --rm", func() bool {
		return len(e.ps()) == 0
	})
}

// TestConcurrentRunRmThroughSupervise: foreground runs with --rm through a
// supervise, 4 at a time, beside CPU hogs, all print the box's output and
// exit 0, and leave no box (issue: 7 of 60 `run --rm -- echo hi` printed
// nothing and exited 1, "log directory ... does not exist", 18 of 200).
// The count is BOXSUP_TEST_RUNS, as for TestConcurrentRunsWithoutSupervise.
func TestConcurrentRunRmThroughSupervise(t *testing.T) {
	n := concurrentRuns(t)
	e := newSupervisedEnv(t)
	startCPUHogs(t, cpuHogs)
	failures := runConcurrently(n, concurrentRunsAtOnce, func(i int) string {
		r := runBoxsup(t, nil, "--home", e.home, "run", "--rm", "-e", markEnv, "--", "/bin/echo", "hi")
		if r.code != 0 || r.stdout != "hi\n" {
			return fmt.Sprintf("run %d: %s", i, r)
		}
		return ""
	})
	if len(failures) > 0 {
		t.Fatalf("%d of %d runs did not print hi and exit 0:\n%s", len(failures), n, strings.Join(failures[:min(len(failures), 5)], "\n"))
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Fatalf("boxes left after %d runs with --rm: %v", n, rows)
	}
}

// runConcurrently calls run(i) for i in [0, n), atOnce at a time, and
// returns the failures it reported (non-empty strings).
func runConcurrently(n, atOnce int, run func(i int) string) []string {
	jobs := make(chan int)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range atOnce {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if f := run(i); f != "" {
					mu.Lock()
					failures = append(failures, f)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return failures
}
