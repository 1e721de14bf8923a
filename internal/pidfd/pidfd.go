// Package pidfd holds a Linux process file descriptor registered with the Go
// netpoller, for the supervisor (shimproc) and for the shim, which may not
// link shimproc's dependencies.
//
// Waiting for an exit through an FD parks a goroutine in epoll, not an OS
// thread, so a process that watches thousands of others costs thousands of
// cheap goroutines; and a signal sent through it always reaches the process
// it was opened for, never a recycled pid.
//
// Errors are the kernel's, so that each caller decides what a process that
// is already gone means to it: Signal returns an error wrapping unix.ESRCH
// for one, and every method on a closed FD returns an error wrapping
// os.ErrClosed.
package pidfd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FD is a non-blocking pidfd in the netpoller. Its methods are safe for
// concurrent use; Close makes a pending Wait return.
type FD struct {
	file   *os.File
	conn   syscall.RawConn
	closed atomic.Bool // Close was called: raw operations fail because of it
}

// Open opens a pidfd (close-on-exec, non-blocking) for pid. A process that
// does not exist gives an error wrapping unix.ESRCH. Like every pid-based
// call it may name a recycled pid: the caller verifies the process behind
// the FD before it trusts it, or opens only its own unreaped children.
func Open(pid int) (*FD, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return register(pid, fd)
}

// Wrap takes ownership of fd, a pidfd of pid obtained elsewhere (for
// example from clone's CLONE_PIDFD), makes it close-on-exec and
// non-blocking, and registers it. It owns fd on every path: on error fd is
// closed, and a caller that must still end the process does so by pid
// (safe for its own unreaped child).
func Wrap(pid, fd int) (*FD, error) {
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	return register(pid, fd)
}

// register wraps a non-blocking fd in an *os.File, which puts it in the
// netpoller. On error fd is closed.
//
// os.NewFile falls back to a plain file when epoll refuses the fd (ENOMEM,
// or the user's max_user_watches): Wait would then fail at once, for ever.
// A file outside the netpoller is refused here instead, with the reason;
// SetReadDeadline is the one call that tells (os.ErrNoDeadline).
func register(pid, fd int) (*FD, error) {
	file := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	if err := file.SetReadDeadline(time.Time{}); err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("pidfd of %d: not pollable (epoll refused it?): %w", pid, err)
	}
	conn, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	return &FD{file: file, conn: conn}, nil
}

// Signal sends sig to the process through the FD.
func (p *FD) Signal(sig syscall.Signal) error {
	var sendErr error
	if err := p.conn.Control(func(fd uintptr) {
		sendErr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return p.rawErr(err)
	}
	return sendErr
}

// Exited reports, without blocking, whether the process has exited: a
// pidfd polls readable once the whole thread group is gone, reaped or not.
func (p *FD) Exited() (bool, error) {
	var done bool
	var pollErr error
	if err := p.conn.Control(func(fd uintptr) {
		done, pollErr = readable(fd)
	}); err != nil {
		return false, p.rawErr(err)
	}
	return done, pollErr
}

// Wait parks the calling goroutine in the netpoller until the process has
// exited (nil) or the FD is closed (an error wrapping os.ErrClosed). A
// failed poll, which short of ENOMEM cannot happen on a valid fd, is
// returned too.
func (p *FD) Wait() error {
	var pollErr error
	err := p.conn.Read(func(fd uintptr) bool {
		var done bool
		done, pollErr = readable(fd)
		return done || pollErr != nil
	})
	if err != nil {
		return p.rawErr(err)
	}
	return pollErr
}

// Close closes the FD; a pending Wait returns at once.
func (p *FD) Close() error {
	p.closed.Store(true)
	return p.file.Close()
}

// rawErr is the error of a raw operation on the file. After Close it is
// internal/poll's "use of closed file", which errors.Is does not match with
// os.ErrClosed: it is turned into one that does. Any other error is
// returned as it is.
func (p *FD) rawErr(err error) error {
	if !p.closed.Load() || errors.Is(err, os.ErrClosed) {
		return err
	}
	return fmt.Errorf("pidfd: %w (%v)", os.ErrClosed, err)
}

// readable polls fd with a zero timeout.
func readable(fd uintptr) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, err
		}
		return n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0, nil
	}
}
