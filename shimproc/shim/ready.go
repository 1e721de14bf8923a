package shim

import (
	"fmt"
	"os"
	"sync"
)

// readyPipe is the write end of the supervisor's ready pipe (fd 3). The shim
// writes exactly one byte when the box is ready and then closes it; closing
// without the byte (or exiting) tells the supervisor the start failed.
// A nil *readyPipe means nobody waits for readiness (the shim was started by
// hand without fd 3); its methods are then no-ops.
type readyPipe struct {
	mu sync.Mutex
	f  *os.File // nil once signalled or abandoned
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
	return &readyPipe{f: os.NewFile(uintptr(fd.fd), "ready-pipe")}, nil
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
