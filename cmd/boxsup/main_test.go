package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/internal/testutil"
)

// Generous bounds: the tests wait on conditions; these only decide when a
// condition is declared never to come.
const (
	commandTimeout = 60 * time.Second
	waitDeadline   = 10 * time.Second
	pollInterval   = 20 * time.Millisecond
)

// markEnv marks every process of the tests: boxsup and its shims inherit it
// from the test process, and guests get it through `run -e markEnv`. The
// leftover scan looks for it.
const markEnv = "BOXSUP_E2E_MARK"

// binDir holds the boxsup and boxsup-shim binaries built for the package;
// boxsup finds the shim beside itself.
var binDir, boxsupBin, shimBin string

// TestMain builds both binaries once, runs the tests and checks that no
// goroutine outlived them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "boxsup-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = os.Chmod(dir, 0o755) // the other-uid test runs boxsup as nobody
	binDir, boxsupBin, shimBin = dir, filepath.Join(dir, "boxsup"), filepath.Join(dir, "boxsup-shim")
	for pkg, out := range map[string]string{
		"github.com/boxsup/boxsup/cmd/boxsup":      boxsupBin,
		"github.com/boxsup/boxsup/cmd/boxsup-shim": shimBin,
	} {
		if err := testutil.Build(out, pkg, raceEnabled); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			_ = os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	os.Setenv(markEnv, dir)
	if raceEnabled && os.Getenv("GORACE") == "" {
		// A race-enabled program sleeps 1 s at exit by default; a
		// detected race still makes it exit 66, which fails the test.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	goleak.VerifyTestMain(testutil.Settling(m), goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// result is one finished boxsup command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// env is one test's home, with the boxsup supervise serving it (nil in
// local mode).
type env struct {
	t    *testing.T
	home string
	sup  *superviseProc
}

// newEnv makes a fresh home. Cleanup removes every box, stops the
// supervisor and then checks that nothing the test started is still alive.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, home: filepath.Join(t.TempDir(), "home")}
	t.Cleanup(func() { assertNoLeftovers(t) })
	t.Cleanup(func() {
		if e.sup != nil {
			e.sup.stop()
		}
	})
	t.Cleanup(e.removeAllBoxes)
	return e
}

// newSupervisedEnv is newEnv with a boxsup supervise serving the home.
func newSupervisedEnv(t *testing.T, args ...string) *env {
	e := newEnv(t)
	e.sup = startSupervise(t, e.home, args...)
	return e
}

// boxsup runs the CLI on the test's home.
func (e *env) boxsup(args ...string) result {
	e.t.Helper()
	return runBoxsup(e.t, nil, append([]string{"--home", e.home}, args...)...)
}

// must runs the CLI and fails the test unless it exits 0.
func (e *env) must(args ...string) result {
	e.t.Helper()
	r := e.boxsup(args...)
	if r.code != 0 {
		e.t.Fatalf("boxsup %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// runDetached starts a detached box running sh -c script (marked for the
// leftover scan) and returns its ID.
func (e *env) runDetached(name string, flags []string, script string) string {
	e.t.Helper()
	args := append([]string{"run", "-d", "--name", name, "-e", markEnv}, flags...)
	r := e.must(append(args, "--", "/bin/sh", "-c", script)...)
	return strings.TrimSpace(r.stdout)
}

// psRow mirrors the documented JSON of boxsup ps.
type psJSONRow struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	PID         int     `json:"pid"`
	Restarts    int     `json:"restarts"`
	ExitCode    *int    `json:"exit_code"`
	Signal      string  `json:"signal"`
	Reason      string  `json:"reason"`
	StartedAt   *string `json:"started_at"`
	CPUPercent  float64 `json:"cpu_percent"`
	MemoryBytes uint64  `json:"memory_bytes"`
	Health      string  `json:"health"`
}

// ps returns `boxsup ps -a --format json` by ID.
func (e *env) ps() map[string]psJSONRow {
	e.t.Helper()
	r := e.must("ps", "-a", "--format", "json")
	var rows []psJSONRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
	}
	out := map[string]psJSONRow{}
	for _, row := range rows {
		out[row.ID] = row
	}
	return out
}

// removeAllBoxes removes every box of the home (stopping live ones).
func (e *env) removeAllBoxes() {
	if _, err := os.Stat(e.home); err != nil {
		return
	}
	if e.sup != nil && e.sup.exited() {
		e.sup = nil
	}
	r := runBoxsup(e.t, nil, "--home", e.home, "ps", "-a", "--format", "json")
	var rows []psJSONRow
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
		e.t.Errorf("cleanup: listing boxes: %s", r)
		return
	}
	if len(rows) == 0 {
		return
	}
	args := []string{"--home", e.home, "rm", "-f"}
	for _, row := range rows {
		args = append(args, row.ID)
	}
	if r := runBoxsup(e.t, nil, args...); r.code != 0 {
		e.t.Errorf("cleanup: removing boxes: %s", r)
	}
}

// runBoxsup runs the boxsup binary; extraEnv is added to the environment.
func runBoxsup(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, boxsupBin, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running boxsup %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("boxsup %v did not finish within %s", args, commandTimeout)
	}
	return r
}

// eventually polls cond until it holds, failing the test after waitDeadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitDeadline, pollInterval, what, cond)
}

// ourProcesses lists live processes of this test package: those whose
// argv[0] is one of the built binaries or whose environment carries the
// package's mark (guests started with -e markEnv).
func ourProcesses() []string {
	entries, _ := os.ReadDir("/proc")
	mark := []byte(markEnv + "=" + binDir + "\x00")
	self := os.Getpid()
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a zombie (nothing left to clean)
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
		if string(argv0) == boxsupBin || string(argv0) == shimBin || bytes.Contains(environ, mark) {
			found = append(found, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return found
}

// assertNoLeftovers fails the test if a process it started is still alive
// once its cleanups ran, and kills what it finds.
func assertNoLeftovers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		left := ourProcesses()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes left behind:\n%s", strings.Join(left, "\n"))
			for _, p := range left {
				if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return
		}
		time.Sleep(pollInterval)
	}
}
