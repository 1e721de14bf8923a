package bench

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stopTrace times how a supervisor stops a process that ignores SIGTERM:
// when the first stop signal (SIGTERM, SIGINT, SIGHUP or SIGQUIT) reached
// the process and when it died. A process that ignores a signal gives no
// sign of receiving it; a ptrace tracer does see it, as a signal-delivery
// stop, because the kernel reports ignored signals to tracers. The tracer
// lets each signal through unchanged (an ignored one is then dropped, as
// without the tracer) and never delays the SIGKILL, which ptrace cannot
// intercept. Both times are CLOCK_MONOTONIC readings taken as the tracer
// wakes, so the same wake-up latency is in both.
type stopTrace struct {
	pid       int
	firstStop atomic.Int64 // 0 until a stop signal arrived; read while tracing
	exit      int64
	err       error
	done      chan struct{}
}

// traceStop attaches to pid (PTRACE_SEIZE, which does not stop it) and
// follows it until it exits.
func traceStop(pid int) (*stopTrace, error) {
	t := &stopTrace{pid: pid, done: make(chan struct{})}
	attached := make(chan error, 1)
	go func() {
		defer close(t.done)
		// Every ptrace request must come from the thread that attached. The
		// thread is never unlocked: it ends with the goroutine, which also
		// detaches anything left.
		runtime.LockOSThread()
		// A real-time tracer wakes as soon as its tracee stops or dies, not
		// when a loaded machine's run queue gets to it; the thread dies with
		// the goroutine, and its priority with it. Without the privilege the
		// tracer runs at normal priority.
		_ = setFIFO()
		if err := unix.PtraceSeize(pid); err != nil {
			attached <- fmt.Errorf("ptrace(SEIZE, %d): %w", pid, err)
			return
		}
		attached <- nil
		t.err = t.follow()
	}()
	if err := <-attached; err != nil {
		<-t.done
		return nil, err
	}
	return t, nil
}

// follow waits for the tracee's stops and its exit.
func (t *stopTrace) follow() error {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(t.pid, &ws, unix.WALL, nil)
		now := monoNow()
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait4(%d): %w", t.pid, err)
		}
		switch {
		case ws.Exited() || ws.Signaled():
			t.exit = now
			return nil
		case ws.Stopped():
			sig := ws.StopSignal()
			inject := sig
			if uint32(ws)>>16 != 0 {
				inject = 0 // a PTRACE_EVENT stop, not a signal to pass on
			}
			switch sig {
			case unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT:
				t.firstStop.CompareAndSwap(0, now)
			}
			if err := unix.PtraceCont(t.pid, int(inject)); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("ptrace(CONT, %d): %w", t.pid, err)
			}
		}
	}
}

// wait waits up to timeout for the tracee's exit and returns the time from
// the first stop signal to the exit.
func (t *stopTrace) wait(timeout time.Duration) (time.Duration, error) {
	select {
	case <-t.done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("pid %d did not exit within %v", t.pid, timeout)
	}
	if t.err != nil {
		return 0, t.err
	}
	first := t.firstStop.Load()
	if first == 0 {
		return 0, fmt.Errorf("pid %d exited without receiving a stop signal", t.pid)
	}
	return time.Duration(t.exit - first), nil
}

// traceStopOf runs stop while tracing the guest and, when the peer signals
// another process to stop it (boxsup's shim), that process too. It returns
// the time from the first stop signal the signalled process received to
// the guest's death.
func traceStopOf(guest, signalled int, stop func() error) (time.Duration, error) {
	g, err := traceStop(guest)
	if err != nil {
		return 0, err
	}
	relay := g
	if signalled != guest {
		if relay, err = traceStop(signalled); err != nil {
			_ = stop()
			_, _ = g.wait(30 * time.Second)
			return 0, err
		}
	}
	if err := stop(); err != nil {
		return 0, err
	}
	if _, err := g.wait(30 * time.Second); err != nil && g.exit == 0 {
		return 0, err
	}
	if relay != g {
		// The relay (the shim) exits right after its guest.
		if _, err := relay.wait(30 * time.Second); err != nil && relay.exit == 0 {
			return 0, err
		}
	}
	first := relay.firstStop.Load()
	if first == 0 {
		return 0, fmt.Errorf("pid %d received no stop signal", signalled)
	}
	return time.Duration(g.exit - first), nil
}

// setFIFO makes the calling thread SCHED_FIFO at a low real-time priority.
func setFIFO() error {
	param := struct{ priority int32 }{priority: 10}
	_, _, errno := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, 0, 1 /* SCHED_FIFO */, uintptr(unsafe.Pointer(&param)))
	if errno != 0 {
		return errno
	}
	return nil
}
