package shimproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// errHandleClosed is returned by operations on a Handle after Close.
var errHandleClosed = errors.New("shimproc: handle is closed")

// pidFD is a non-blocking pidfd registered with the Go netpoller. Waiting for
// the process's exit parks a goroutine in the netpoller (epoll), not an OS
// thread, so thousands of boxes cost thousands of cheap goroutines.
type pidFD struct {
	file *os.File
	conn syscall.RawConn
}

// openPidFD opens a pidfd (O_CLOEXEC, PIDFD_NONBLOCK) for pid. A process that
// no longer exists gives an error wrapping ErrGone.
func openPidFD(pid int) (*pidFD, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pidfd_open %d: %w", pid, ErrGone)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	// os.NewFile sees O_NONBLOCK and registers the fd with the netpoller.
	file := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	conn, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("pidfd %d: %w", pid, err)
	}
	return &pidFD{file: file, conn: conn}, nil
}

// sendSignal sends sig through the pidfd, which always reaches the process the
// pidfd was opened for, never a recycled PID. ESRCH becomes ErrGone.
func (p *pidFD) sendSignal(sig syscall.Signal) error {
	var sendErr error
	if err := p.conn.Control(func(fd uintptr) {
		sendErr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return errHandleClosed
	}
	if errors.Is(sendErr, unix.ESRCH) {
		return ErrGone
	}
	return sendErr
}

// exited reports, without blocking, whether the process has exited (a pidfd
// polls readable once the whole thread group is gone, reaped or not).
func (p *pidFD) exited() (bool, error) {
	var done bool
	var pollErr error
	if err := p.conn.Control(func(fd uintptr) {
		done, pollErr = pollReadable(fd)
	}); err != nil {
		return false, errHandleClosed
	}
	return done, pollErr
}

// waitExit blocks until the process exits (nil) or the pidfd is closed (an
// error). The goroutine calling it sleeps in the netpoller between wake-ups.
// A failed poll (it cannot fail on a valid fd short of ENOMEM) is returned
// too; the caller tells the two error kinds apart by whether it closed the fd.
func (p *pidFD) waitExit() error {
	var pollErr error
	err := p.conn.Read(func(fd uintptr) bool {
		var done bool
		done, pollErr = pollReadable(fd)
		return done || pollErr != nil
	})
	if err != nil {
		return err
	}
	return pollErr
}

// close closes the pidfd; a pending waitExit returns at once.
func (p *pidFD) close() error { return p.file.Close() }

// pollReadable polls fd with a zero timeout.
func pollReadable(fd uintptr) (bool, error) {
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
