package shimproc

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/pidfd"
)

// errHandleClosed is returned by operations on a Handle after Close.
var errHandleClosed = errors.New("shimproc: handle is closed")

// pidFD is a handle's pidfd in the netpoller (package pidfd), with this
// package's errors: a process that is gone is ErrGone, and a closed handle
// errHandleClosed.
type pidFD struct{ fd *pidfd.FD }

// openPidFD opens a pidfd for pid. A process that no longer exists gives an
// error wrapping ErrGone.
func openPidFD(pid int) (*pidFD, error) {
	fd, err := pidfd.Open(pid)
	if errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, ErrGone)
	}
	if err != nil {
		return nil, err
	}
	return &pidFD{fd: fd}, nil
}

// sendSignal sends sig through the pidfd, which always reaches the process the
// pidfd was opened for, never a recycled PID. ESRCH becomes ErrGone.
func (p *pidFD) sendSignal(sig syscall.Signal) error {
	err := p.fd.Signal(sig)
	switch {
	case errors.Is(err, os.ErrClosed):
		return errHandleClosed
	case errors.Is(err, unix.ESRCH):
		return ErrGone
	}
	return err
}

// exited reports, without blocking, whether the process has exited, reaped
// or not.
func (p *pidFD) exited() (bool, error) {
	done, err := p.fd.Exited()
	if errors.Is(err, os.ErrClosed) {
		return false, errHandleClosed
	}
	return done, err
}

// waitExit blocks until the process exits (nil) or the pidfd is closed (an
// error). The goroutine calling it sleeps in the netpoller between wake-ups.
// A failed poll (it cannot fail on a valid fd short of ENOMEM) is returned
// too; the caller tells the two error kinds apart by whether it closed the fd.
func (p *pidFD) waitExit() error { return p.fd.Wait() }

// close closes the pidfd; a pending waitExit returns at once.
func (p *pidFD) close() error { return p.fd.Close() }
