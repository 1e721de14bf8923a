package shim_test

import (
	"bufio"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// restartLine is the supervisor's side of a restart line in these tests.
type restartLine struct {
	t *testing.T
	r *runningShim
	b *bufio.Reader
}

// lineReport is one line the shim writes on the restart line.
type lineReport struct {
	GuestExit    *messages.ExitRecord `json:"guest_exit"`
	GuestStarted *struct {
		PID int `json:"pid"`
	} `json:"guest_started"`
}

func (l *restartLine) next() lineReport {
	l.t.Helper()
	if err := l.r.ready.SetReadDeadline(time.Now().Add(deadline)); err != nil {
		l.t.Fatal(err)
	}
	line, err := l.b.ReadString('\n')
	if err != nil {
		l.t.Fatalf("restart line: %v (shim log:\n%s)", err, l.r.log())
	}
	var rep lineReport
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		l.t.Fatalf("restart line: %q: %v", line, err)
	}
	return rep
}

func (l *restartLine) answer(b byte) {
	l.t.Helper()
	if _, err := l.r.ready.Write([]byte{b}); err != nil {
		l.t.Fatalf("answer: %v", err)
	}
}

// startInPlace starts a shim with restart_in_place whose guest prints a
// line and sleeps, and waits for its ready byte.
func startInPlace(t *testing.T, detach bool) (*runningShim, *restartLine) {
	t.Helper()
	dir := t.TempDir()
	spec := newSpec(dir, "inplace", "/bin/sh", "-c", "echo run; exec sleep 30")
	spec.RestartInPlace = true
	spec.Detach = detach
	r := startShim(t, dir, spec, launch{readySocket: true})
	if !r.readReady() {
		t.Fatalf("no ready byte (shim log:\n%s)", r.log())
	}
	return r, &restartLine{t: t, r: r, b: bufio.NewReader(r.ready)}
}

func TestRestartInPlaceWhenTheSupervisorSaysSo(t *testing.T) {
	t.Parallel()
	r, line := startInPlace(t, false)
	// The first guest's line is in the console before it is killed, or
	// the kill could come before its echo.
	waitFor(t, "the first guest's line in the console", func() bool {
		return strings.Count(readFile(t, r.spec.ConsoleOutput), " stdout F run\n") == 1
	})
	first := r.guestPID()
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	q := line.next()
	if q.GuestExit == nil || q.GuestExit.ExitCode != 137 || q.GuestExit.Signal != "SIGKILL" {
		t.Fatalf("question = %+v, want the guest's SIGKILL", q)
	}
	if !r.running() {
		t.Fatal("the shim ended before it was answered")
	}
	line.answer('R')
	started := line.next()
	if started.GuestStarted == nil || started.GuestStarted.PID == first {
		t.Fatalf("after R: %+v, want a new guest", started)
	}
	second := started.GuestStarted.PID
	waitFor(t, "the new guest as the shim's only child", func() bool {
		kids := childrenOf(r.pid())
		return len(kids) == 1 && kids[0] == second
	})
	// The console goes on, in the same file, for the new guest.
	waitFor(t, "both guests' lines in the console", func() bool {
		return strings.Count(readFile(t, r.spec.ConsoleOutput), " stdout F run\n") == 2
	})

	if err := syscall.Kill(second, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if q := line.next(); q.GuestExit == nil {
		t.Fatalf("second question = %+v", q)
	}
	line.answer('E')
	if code := r.wait(); code != 137 {
		t.Errorf("shim exit code %d, want 137 (shim log:\n%s)", code, r.log())
	}
	if rec := r.exitRecord(); rec.ExitCode != 137 || rec.Signal != "SIGKILL" {
		t.Errorf("exit record %+v, want the second guest's SIGKILL", rec)
	}
	if !strings.Contains(r.log(), "guest restarted in place (restart 1), pid ") {
		t.Errorf("shim log does not say it restarted the guest in place:\n%s", r.log())
	}
}

// TestRestartInPlaceEndsWithoutSupervisor: nobody on the line (a supervisor
// that let go of the box, or one that adopted it later) means the shim
// ends as it would without restart_in_place.
func TestRestartInPlaceEndsWithoutSupervisor(t *testing.T) {
	t.Parallel()
	r, _ := startInPlace(t, true)
	_ = r.ready.Close()
	if err := syscall.Kill(r.guestPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 137 {
		t.Errorf("shim exit code %d, want 137 (shim log:\n%s)", code, r.log())
	}
}

// TestRestartInPlaceStopWhileAsking: a stop request while the shim waits
// for its answer ends it; the guest is not started again.
func TestRestartInPlaceStopWhileAsking(t *testing.T) {
	t.Parallel()
	r, line := startInPlace(t, false)
	if err := syscall.Kill(r.guestPID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if q := line.next(); q.GuestExit == nil {
		t.Fatalf("question = %+v", q)
	}
	if err := syscall.Kill(r.pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(); code != 137 {
		t.Errorf("shim exit code %d, want the guest's 137 (shim log:\n%s)", code, r.log())
	}
	if strings.Contains(r.log(), "restarted in place") {
		t.Errorf("the guest was restarted after a stop:\n%s", r.log())
	}
}

// TestRestartInPlaceNeedsASocket: a pipe at fd 3 cannot carry answers.
func TestRestartInPlaceNeedsASocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := newSpec(dir, "inplace", "/bin/sleep", "30")
	spec.RestartInPlace = true
	r := startShim(t, dir, spec, launch{})
	if r.readReady() {
		t.Fatal("ready with restart_in_place and a pipe at fd 3")
	}
	if code := r.wait(); code != 125 {
		t.Errorf("exit code %d, want 125", code)
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, "restart_in_place needs a socket") {
		t.Errorf("exit record %+v", rec)
	}
}
