package shim_test

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestStartupLatency measures shim start → ready byte for a `sleep` guest
// (readiness = successful exec) over 100 runs (30 under -short or -race),
// plainly and through the confining init, next to the floor of starting `sleep`
// directly with os/exec, and logs median and p99 (-v). It asserts nothing
// about time: a slow machine must not fail it.
func TestStartupLatency(t *testing.T) {
	runs := 100
	if testing.Short() || raceEnabled {
		runs = 30 // race figures are inflated anyway; keep the package quick
	}
	dir := t.TempDir()
	spec := newSpec(dir, "timed", "sleep", "30")
	confined := spec
	confined.Security.MaxOpenFiles = 1024 // any setting that needs the confining init
	shimTimes := make([]time.Duration, 0, runs)
	confinedTimes := make([]time.Duration, 0, runs)
	floorTimes := make([]time.Duration, 0, runs)
	for i := 0; i < runs; i++ {
		shimTimes = append(shimTimes, timeShimReady(t, dir, spec))
		confinedTimes = append(confinedTimes, timeShimReady(t, dir, confined))
		floorTimes = append(floorTimes, timeExecFloor(t))
	}
	build := "normal build"
	if raceEnabled {
		build = "race build: figures inflated"
	}
	t.Logf("shim start → ready byte over %d runs (%s): median %v, p99 %v", runs, build, percentile(shimTimes, 50), percentile(shimTimes, 99))
	t.Logf("the same through the confining init:    median %v, p99 %v", percentile(confinedTimes, 50), percentile(confinedTimes, 99))
	t.Logf("floor, os/exec Start of sleep:          median %v, p99 %v", percentile(floorTimes, 50), percentile(floorTimes, 99))
	if len(shimTimes) != runs {
		t.Fatalf("measured %d runs, want %d", len(shimTimes), runs)
	}
}

// BenchmarkShimReady reports shim start → ready byte per operation.
func BenchmarkShimReady(b *testing.B) {
	dir := b.TempDir()
	spec := newSpec(dir, "bench", "sleep", "30")
	for b.Loop() {
		timeShimReady(b, dir, spec)
	}
}

// timeShimReady starts one shim, times it until the ready byte, then stops
// it with SIGTERM and waits for it.
func timeShimReady(tb testing.TB, dir string, spec messages.InstanceSpec) time.Duration {
	tb.Helper()
	start := time.Now()
	r := startShim(tb, dir, spec, launch{})
	if !r.readReady() {
		tb.Fatalf("no ready byte; log:\n%s", r.log())
	}
	took := time.Since(start)
	_ = syscall.Kill(r.pid(), syscall.SIGTERM)
	r.wait()
	return took
}

// timeExecFloor times os/exec Start of `sleep 30`, then kills it.
func timeExecFloor(t *testing.T) time.Duration {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return took
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}
