package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// maxSocketPath is the longest path a unix socket can be bound to: sun_path
// holds 108 bytes including the terminating NUL.
const maxSocketPath = 107

// readySocket is the listening unix socket at spec.ready_transport. The first
// connection accepted on it is the guest saying "ready"; the connection is
// closed at once and the socket removed.
//
// It is built on raw syscalls and the runtime's poller (os.NewFile on a
// non-blocking socket, SyscallConn().Read to wait) rather than package net,
// which would make the shim a dynamically linked cgo binary and slow every
// start.
type readySocket struct {
	path    string
	f       *os.File
	waiting bool          // awaitConnection was called (main goroutine only)
	done    chan struct{} // closed when the accept goroutine has returned
	ready   func()        // onReady, called once (sync.Once)
	once    sync.Once
}

// listenReadySocket binds and listens on path before the guest starts, so a
// guest that connects at once cannot miss it. A stale socket at path is
// removed; anything else there is refused (messages.ErrNotSocket).
func listenReadySocket(path string) (*readySocket, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("ready_transport: path is %d bytes, longer than the %d a unix socket path may have", len(path), maxSocketPath)
	}
	switch fi, err := os.Lstat(path); {
	case err == nil && fi.Mode()&fs.ModeSocket == 0:
		return nil, messages.Errorf(messages.ErrNotSocket, "ready_transport %s", path)
	case err == nil:
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("ready_transport: remove stale socket: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("ready_transport: %w", err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ready_transport: socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("ready_transport: bind %s: %w", path, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		_ = unix.Close(fd)
		_ = os.Remove(path)
		return nil, fmt.Errorf("ready_transport: listen %s: %w", path, err)
	}
	return &readySocket{path: path, f: os.NewFile(uintptr(fd), "ready-socket"), done: make(chan struct{})}, nil
}

// awaitConnection starts a goroutine that waits, in the poller and without a
// thread of its own, for the first connection; it closes that connection and
// the listener, removes the socket file and calls onReady. Closing the
// listener (close) ends the wait without calling onReady.
func (s *readySocket) awaitConnection(onReady func()) {
	s.waiting = true
	s.ready = func() { s.once.Do(onReady) }
	go func() {
		defer close(s.done)
		if s.acceptOne() {
			s.closeListener()
			s.ready()
		}
	}()
}

// acceptPending takes, without waiting, a connection already queued on the
// listener: a guest that connected and exited before the accept goroutine
// ran did signal ready. It calls onReady when there is one.
func (s *readySocket) acceptPending() {
	if !s.waiting {
		return
	}
	rc, err := s.f.SyscallConn()
	if err != nil {
		return
	}
	accepted := false
	_ = rc.Control(func(fd uintptr) {
		if nfd, _, aerr := unix.Accept4(int(fd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK); aerr == nil {
			_ = unix.Close(nfd)
			accepted = true
		}
	})
	if accepted {
		s.ready()
	}
}

// acceptOne waits for one connection and closes it at once: the connection
// itself is the signal, no byte is exchanged. It returns false when the
// listener was closed first.
func (s *readySocket) acceptOne() bool {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return false
	}
	accepted := false
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr := unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
		switch {
		case aerr == nil:
			_ = unix.Close(nfd)
			accepted = true
			return true
		case errors.Is(aerr, unix.EAGAIN), errors.Is(aerr, unix.EINTR), errors.Is(aerr, unix.ECONNABORTED):
			return false // nothing (usable) pending: wait for the poller
		default:
			return true // a real error: give up on readiness by socket
		}
	})
	return err == nil && accepted
}

// closeListener closes the listening socket and removes its file; safe to
// call more than once.
func (s *readySocket) closeListener() {
	if err := s.f.Close(); err == nil {
		_ = os.Remove(s.path)
	}
}

// close ends the wait (if still waiting) and returns once the accept
// goroutine, if one was started, is gone.
func (s *readySocket) close() {
	s.closeListener()
	if s.waiting {
		<-s.done
	}
}
