package pidfd

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBound bounds a wait for an exit that a test has caused.
const waitBound = 10 * time.Second

// startSleep starts a child that lives until it is signalled; Cleanup kills
// and reaps it whatever the test did.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	return testutil.StartChild(t, "sleep", "3600")
}

// waitWithin runs p.Wait and fails the test if it has not returned within
// waitBound.
func waitWithin(t *testing.T, p *FD) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitBound):
		t.Fatal("Wait did not return")
		return nil
	}
}

func TestSignalThenWaitSeesTheExit(t *testing.T) {
	t.Parallel()
	cmd := startSleep(t)
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if exited, err := p.Exited(); err != nil || exited {
		t.Fatalf("Exited() of a running child = %v, %v; want false, nil", exited, err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if err := waitWithin(t, p); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	// Readable once the child is a zombie, before anyone reaps it.
	if exited, err := p.Exited(); err != nil || !exited {
		t.Fatalf("Exited() of an unreaped dead child = %v, %v; want true, nil", exited, err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("sleep killed by SIGTERM reported success")
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("Signal to a reaped child = %v, want ESRCH", err)
	}
}

func TestCloseEndsAPendingWait(t *testing.T) {
	t.Parallel()
	cmd := startSleep(t)
	p, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Wait after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(waitBound):
		t.Fatal("Close did not end the pending Wait")
	}
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Signal after Close = %v, want os.ErrClosed", err)
	}
	if _, err := p.Exited(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Exited after Close = %v, want os.ErrClosed", err)
	}
}

func TestWrapTakesAnFDFromElsewhere(t *testing.T) {
	t.Parallel()
	cmd := startSleep(t)
	raw, err := unix.PidfdOpen(cmd.Process.Pid, 0) // blocking, no CLOEXEC yet
	if err != nil {
		t.Fatal(err)
	}
	p, err := Wrap(cmd.Process.Pid, raw)
	if err != nil {
		t.Fatal(err) // Wrap closed raw
	}
	defer p.Close()
	flags, err := unix.FcntlInt(uintptr(raw), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("wrapped fd flags = %#x, %v; want FD_CLOEXEC", flags, err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := waitWithin(t, p); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

func TestOpenOfAMissingProcess(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// Reaped: the kernel hands out pids in sequence, so this one names no
	// process until the counter wraps.
	if _, err := Open(cmd.Process.Pid); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("Open of a reaped pid = %v, want ESRCH", err)
	}
}
