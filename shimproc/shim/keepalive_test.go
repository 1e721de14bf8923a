package shim_test

import (
	"path/filepath"
	"strings"
	"testing"
)

// When the supervisor's end of the keepalive pipe closes, the shim stops the
// guest gracefully and says why in exit.json.
func TestKeepaliveLossStopsGuest(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "kept", "sleep", "30"), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	guest := r.guestPID()
	_ = r.keepalive.Close()
	if code := r.wait(); code != 143 {
		t.Errorf("shim exit code = %d, want 143; log:\n%s", code, r.log())
	}
	rec := r.exitRecord()
	if rec.Signal != "SIGTERM" || rec.Reason != "keepalive lost: supervisor gone" {
		t.Errorf("exit record = %+v, want SIGTERM and reason %q", rec, "keepalive lost: supervisor gone")
	}
	waitFor(t, "the guest to be gone", func() bool { return !alive(guest) })
}

// A guest that ignores SIGTERM is killed once the keepalive grace is over,
// and what it left in the box's process group goes with it.
func TestKeepaliveLossKillsStubbornGuestAfterGrace(t *testing.T) {
	dir := t.TempDir()
	beats, bgPID := filepath.Join(dir, "beats"), filepath.Join(dir, "bg.pid")
	script := `trap "" TERM; sleep 30 & echo $! > ` + bgPID + `; while :; do echo beat >> ` + beats + `; sleep 0.05; done`
	r := startShim(t, dir, newSpec(dir, "stubborn", "sh", "-c", script), launch{
		env: []string{"BOXSUP_SHIM_KEEPALIVE_GRACE=300ms"},
	})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	waitFor(t, "the guest's first heartbeat", func() bool { return countLines(t, beats) > 0 })
	_ = r.keepalive.Close()
	if code := r.wait(); code != 137 {
		t.Errorf("shim exit code = %d, want 137 (guest SIGKILLed); log:\n%s", code, r.log())
	}
	rec := r.exitRecord()
	if rec.Signal != "SIGKILL" || !strings.HasPrefix(rec.Reason, "keepalive lost: supervisor gone") || !strings.Contains(rec.Reason, "killed after") {
		t.Errorf("exit record = %+v, want SIGKILL and a keepalive reason naming the kill", rec)
	}
	if members := liveGroupMembers(r.pid()); len(members) != 0 {
		t.Errorf("processes %v outlived the shim (background sleep was %s)", members, strings.TrimSpace(readFile(t, bgPID)))
	}
}

// A detached box has no keepalive: closing every pipe the supervisor holds
// leaves it running.
func TestDetachedShimOutlivesSupervisorPipes(t *testing.T) {
	dir := t.TempDir()
	beats := filepath.Join(dir, "beats")
	spec := newSpec(dir, "detached", "sh", "-c", "while :; do echo beat >> "+beats+"; sleep 0.05; done")
	spec.Detach = true
	r := startShim(t, dir, spec, launch{})
	if r.keepalive != nil {
		t.Fatal("harness passed a keepalive pipe to a detached shim")
	}
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	r.closePipes()
	// The shim reacts to a lost keepalive at once; several heartbeats after
	// the supervisor let go show that nothing is reacting here.
	after := countLines(t, beats)
	waitFor(t, "heartbeats after the pipes closed", func() bool { return countLines(t, beats) >= after+4 })
	if !r.running() {
		t.Fatalf("detached shim exited after its supervisor's pipes closed; log:\n%s", r.log())
	}
	if st, _ := readProcStat(r.pid()); st.pgrp != r.pid() {
		t.Errorf("detached shim's process group = %d, want its own", st.pgrp)
	}
	// Cleanup kills the session's process group.
}

// Without fd 4 an attached (not detached) shim refuses to run: nobody could
// ever tell it that its supervisor is gone.
func TestMissingKeepaliveIsAUsageError(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	r := startShim(t, dir, newSpec(dir, "nokeep", "touch", marker), launch{noKeepalive: true})
	if r.readReady() {
		t.Fatal("ready byte without a keepalive pipe")
	}
	if code := r.wait(); code != 125 {
		t.Errorf("exit code = %d, want 125", code)
	}
	if rec := r.exitRecord(); rec.ExitCode != 125 || !strings.Contains(rec.Reason, "fd 4") {
		t.Errorf("exit record = %+v, want 125 and a reason naming fd 4", rec)
	}
	if fileExists(marker) {
		t.Error("the guest ran")
	}
}

// Without fd 3 nobody waits for readiness; the box runs anyway. That holds
// too when the Go runtime itself takes the free number 3 before Main runs
// (with cgroup-aware GOMAXPROCS on, it keeps cgroup files open where a cpu
// controller exists): only a pipe or socket is the supervisor's.
func TestNoReadyPipeRunsAnyway(t *testing.T) {
	for name, env := range map[string][]string{
		"default":                  nil,
		"runtime holds cgroup fds": {"GODEBUG=containermaxprocs=1,updatemaxprocs=1"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := startShim(t, dir, newSpec(dir, "noready", "sh", "-c", "exit 5"), launch{noReady: true, env: env})
			if code := r.wait(); code != 5 {
				t.Errorf("exit code = %d, want 5; log:\n%s", code, r.log())
			}
		})
	}
}

// A ready pipe passed in the wrong direction is a caller error.
func TestReadyPipeWrongDirection(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "swapped", "sleep", "30"), launch{noReady: true, swapReady: true})
	if code := r.wait(); code != 125 {
		t.Errorf("exit code = %d, want 125; log:\n%s", code, r.log())
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, "fd 3 is not open for writing") {
		t.Errorf("reason = %q", rec.Reason)
	}
}
