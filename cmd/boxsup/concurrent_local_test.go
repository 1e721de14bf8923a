package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// concurrentRunsEnv sets how many foreground runs
// TestConcurrentRunsWithoutSupervise makes (default concurrentRunsDefault,
// about 15 s under the race detector on two busy cores); the figure
// is BOXSUP_TEST_RUNS=200, about 80 s (README.md lists the knob).
const (
	concurrentRunsEnv     = "BOXSUP_TEST_RUNS"
	concurrentRunsDefault = 24
	concurrentRunsAtOnce  = 4
	cpuHogs               = 2
)

// startCPUHogs starts n busy loops (marked for the leftover scan) and kills
// them when the test ends.
func startCPUHogs(t *testing.T, n int) {
	t.Helper()
	for range n {
		hog := exec.Command("/bin/sh", "-c", "while :; do :; done")
		hog.Env = []string{markEnv + "=" + binDir}
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = hog.Process.Signal(syscall.SIGKILL)
			_ = hog.Wait()
		})
	}
}

// TestConcurrentRunsWithoutSupervise: without a supervisor, foreground runs
// on one home, 4 at a time, with CPU hogs running, all exit with their
// box's code: they queue for the home lock instead of failing, and no
// command's request is cancelled because another command's temporary
// supervisor went away (issue: 5 of 12 exited 1 "request cancelled", 119 of
// 200 failed with six hogs). None leaves a box behind (--rm).
func TestConcurrentRunsWithoutSupervise(t *testing.T) {
	n := concurrentRunsDefault
	if s := os.Getenv(concurrentRunsEnv); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("%s=%q: want a positive count", concurrentRunsEnv, s)
		}
		n = v
	}
	e := newEnv(t)
	startCPUHogs(t, cpuHogs)

	jobs := make(chan int)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range concurrentRunsAtOnce {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := runBoxsup(t, nil, "--home", e.home, "run", "--rm", "-e", markEnv, "--", "/bin/sh", "-c", "exit 7")
				if r.code != 7 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("run %d: %s", i, r))
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
	if len(failures) > 0 {
		t.Fatalf("%d of %d runs did not exit 7:\n%s", len(failures), n, strings.Join(failures[:min(len(failures), 5)], "\n"))
	}
	if rows := e.ps(); len(rows) != 0 {
		t.Fatalf("boxes left after %d runs with --rm: %v", n, rows)
	}
}
