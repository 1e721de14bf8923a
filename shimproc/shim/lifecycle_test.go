package shim_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/boxlog"
)

// A sleeping guest: the ready byte comes once it runs (and the pipe is closed
// right after it, though the guest lives on); SIGTERM to the shim stops the
// guest, the shim exits 143 and exit.json names SIGTERM; nothing is left.
func TestSIGTERMStopsGuest(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "sleeper", "sleep", "30"), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; shim log:\n%s", r.log())
	}
	if r.readReady() {
		t.Fatal("a second byte on the ready pipe; want EOF after the first")
	}
	guest := r.guestPID()
	if got := procFile(guest, "cmdline"); got != "sleep\x0030\x00" {
		t.Errorf("guest cmdline = %q, want sleep 30", got)
	}
	if st, _ := readProcStat(guest); st.pgrp != r.pid() {
		t.Errorf("guest process group = %d, want the shim's (%d)", st.pgrp, r.pid())
	}

	if err := syscall.Kill(r.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 143 {
		t.Errorf("shim exit code = %d, want 143; log:\n%s", code, r.log())
	}
	rec := r.exitRecord()
	if rec.ExitCode != 143 || rec.Signal != "SIGTERM" || rec.Reason != "stopped by supervisor request (SIGTERM)" {
		t.Errorf("exit record = %+v, want 143 SIGTERM \"stopped by supervisor request (SIGTERM)\"", rec)
	}
	if rec.FinishedAt.IsZero() || rec.FinishedAt.Location() != time.UTC {
		t.Errorf("finished_at = %v, want a UTC time", rec.FinishedAt)
	}
	waitFor(t, "the guest to be gone", func() bool { return !alive(guest) })
}

// SIGINT is a graceful stop too: the guest receives SIGTERM.
func TestSIGINTStopsGuestWithSIGTERM(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "sleeper", "sleep", "30"), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; shim log:\n%s", r.log())
	}
	if err := syscall.Kill(r.pid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 143 {
		t.Errorf("shim exit code = %d, want 143 (guest killed by SIGTERM)", code)
	}
	if rec := r.exitRecord(); rec.Signal != "SIGTERM" || rec.Reason != "stopped by supervisor request (SIGINT)" {
		t.Errorf("exit record = %+v", rec)
	}
}

// The guest's exit code becomes the shim's, and exit.json's.
func TestGuestExitCode(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "three", "sh", "-c", "echo to-console; exit 3"), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte for a guest that started; log:\n%s", r.log())
	}
	if code := r.wait(); code != 3 {
		t.Errorf("shim exit code = %d, want 3", code)
	}
	if rec := r.exitRecord(); rec.ExitCode != 3 || rec.Signal != "" || rec.Reason != "exited" {
		t.Errorf("exit record = %+v, want exit 3, no signal, reason exited", rec)
	}
	if got := consoleText(t, filepath.Join(dir, "console.log"), boxlog.Options{}); got != "to-console\n" {
		t.Errorf("console = %q, want the guest's output", got)
	}
}

// A guest killed by a signal nobody asked for: 128+N, the signal's name.
func TestGuestKilledBySignal(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "victim", "sh", "-c", "kill -USR1 $$; sleep 30"), launch{})
	if code := r.wait(); code != 128+int(syscall.SIGUSR1) {
		t.Errorf("shim exit code = %d, want %d", code, 128+int(syscall.SIGUSR1))
	}
	if rec := r.exitRecord(); rec.Signal != "SIGUSR1" || rec.Reason != "signal" || rec.ExitCode != 138 {
		t.Errorf("exit record = %+v, want 138 SIGUSR1 reason signal", rec)
	}
}

// A guest that handles SIGTERM and goes on: each SIGTERM to the shim reaches
// it (a second one too), the box keeps running, and a SIGKILL to the
// process group, which the shim and the guest share, ends everything.
func TestGuestIgnoringSIGTERMDiesWithItsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	terms, beats := filepath.Join(dir, "terms"), filepath.Join(dir, "beats")
	script := `trap 'echo term >> ` + terms + `' TERM; while :; do echo beat >> ` + beats + `; sleep 0.05; done`
	r := startShim(t, dir, newSpec(dir, "stubborn", "sh", "-c", script), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	guest := r.guestPID()
	waitFor(t, "the guest's first heartbeat", func() bool { return countLines(t, beats) > 0 })

	for i := 1; i <= 2; i++ {
		if err := syscall.Kill(r.pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the guest to receive SIGTERM", func() bool { return countLines(t, terms) == i })
		after := countLines(t, beats)
		waitFor(t, "the guest to go on after SIGTERM", func() bool { return countLines(t, beats) >= after+2 })
		if !r.running() || !alive(guest) {
			t.Fatalf("box stopped after SIGTERM %d though the guest handles it; log:\n%s", i, r.log())
		}
	}

	if members := liveGroupMembers(r.pid()); len(members) < 2 {
		t.Fatalf("process group %d has %v, want the shim and its guest", r.pid(), members)
	}
	if err := syscall.Kill(-r.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait()
	if ws := r.state.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("shim wait status = %v, want killed by SIGKILL", r.state)
	}
	waitFor(t, "every process of the group to be gone", func() bool { return len(liveGroupMembers(r.pid())) == 0 })
}

// Killing only the shim takes the guest with it (parent-death signal).
func TestGuestDiesWithShim(t *testing.T) {
	dir := t.TempDir()
	r := startShim(t, dir, newSpec(dir, "orphan", "sleep", "30"), launch{})
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	guest := r.guestPID()
	if err := syscall.Kill(r.pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.wait()
	waitFor(t, "the guest to die with its shim", func() bool { return !alive(guest) })
}

// Processes the guest leaves behind in the box's process group are killed
// when the guest exits: the box lives as long as its guest.
func TestLeftoverProcessesAreSwept(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "bg.pid")
	script := "sleep 30 & echo $! > " + pidFile + "; exit 0"
	r := startShim(t, dir, newSpec(dir, "leaver", "sh", "-c", script), launch{})
	if code := r.wait(); code != 0 {
		t.Fatalf("shim exit code = %d, want 0; log:\n%s", code, r.log())
	}
	bg := strings.TrimSpace(readFile(t, pidFile))
	if bg == "" {
		t.Fatal("the guest wrote no background pid")
	}
	if members := liveGroupMembers(r.pid()); len(members) != 0 {
		t.Errorf("processes %v of the box's group outlived the shim (background pid %s)", members, bg)
	}
	if !strings.Contains(r.log(), "killed 1 leftover process") {
		t.Errorf("shim log does not report the sweep:\n%s", r.log())
	}
}

// The guest's stdin is /dev/null and it does not inherit the ready or
// keepalive pipes.
func TestGuestDescriptors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "fds")
	script := "ls -l /proc/self/fd/ > " + out + " 2>&1; exit 0"
	r := startShim(t, dir, newSpec(dir, "fds", "sh", "-c", script), launch{})
	if code := r.wait(); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log())
	}
	got := readFile(t, out)
	if !strings.Contains(got, " 0 -> /dev/null") {
		t.Errorf("guest stdin is not /dev/null:\n%s", got)
	}
	if strings.Contains(got, "pipe:") {
		t.Errorf("a pipe leaked into the guest:\n%s", got)
	}
}
