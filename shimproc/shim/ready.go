package shim

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// readyPipe is the write end of the supervisor's ready pipe (fd 3). The shim
// writes exactly one byte when the box is ready and then closes it; closing
// without the byte (or exiting) tells the supervisor the start failed.
// A nil *readyPipe means nobody waits for readiness (the shim was started by
// hand without fd 3); its methods are then no-ops.
type readyPipe struct {
	mu     sync.Mutex
	f      *os.File // nil once signalled or abandoned
	socket bool     // fd 3 is a socket (in the netpoller): it can carry restart_in_place's questions
}

// openReadyPipe wraps fd 3: nil when the supervisor passed none, an error
// when it is a pipe open in the wrong direction (the shim then writes
// nothing to it). Blocking or not (a supervisor using os.Pipe hands over a
// non-blocking one), the write never waits: one byte always fits in an
// empty pipe.
func openReadyPipe(fd inheritedFD) (*readyPipe, error) {
	switch {
	case !fd.present:
		return nil, nil
	case fd.err != nil:
		return nil, fmt.Errorf("ready pipe: %w", fd.err)
	}
	if fd.socket {
		// Non-blocking, so that os.NewFile puts it in the netpoller: with
		// restart_in_place the shim keeps it and waits on it for answers
		// (restartLine) without an OS thread. The ready byte still never
		// waits: one byte always fits in an empty socket.
		if err := unix.SetNonblock(fd.fd, true); err != nil {
			return nil, fmt.Errorf("ready socket: %w", err)
		}
	}
	return &readyPipe{f: os.NewFile(uintptr(fd.fd), "ready-pipe"), socket: fd.socket}, nil
}

// signal writes the ready byte and closes the pipe. Only the first call (of
// signal or abandon) has an effect. A failed write (EPIPE: the supervisor
// closed its end) is ignored: nobody is waiting any more, and the keepalive,
// not this pipe, tells the shim whether its supervisor is alive.
func (r *readyPipe) signal() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return
	}
	_, _ = r.f.Write([]byte{1})
	_ = r.f.Close()
	r.f = nil
}

// signalAndKeep writes the ready byte like signal, but hands the socket to
// the caller instead of closing it (restart_in_place). It returns nil, having
// closed it, when fd 3 is not a socket or the byte could not be written.
func (r *readyPipe) signalAndKeep() *os.File {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.f
	if f == nil {
		return nil
	}
	r.f = nil
	if _, err := f.Write([]byte{1}); err != nil || !r.socket {
		_ = f.Close()
		return nil
	}
	return f
}

// abandon closes the pipe without the ready byte, if it is still open.
func (r *readyPipe) abandon() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		_ = r.f.Close()
		r.f = nil
	}
}
