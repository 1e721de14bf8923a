package shim

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultKeepaliveGrace is how long the guest gets to stop after SIGTERM
// once the keepalive pipe reports that the supervisor is gone; then it is
// killed with SIGKILL.
const DefaultKeepaliveGrace = 2 * time.Second

// KeepaliveGraceEnv overrides DefaultKeepaliveGrace with a Go duration
// ("500ms"). It exists for tests; the spec deliberately carries no such knob.
const KeepaliveGraceEnv = "BOXSUP_SHIM_KEEPALIVE_GRACE"

// keepaliveGrace returns the grace period from the environment or the
// default. A malformed or negative value is a usage error.
func keepaliveGrace() (time.Duration, error) {
	v, ok := os.LookupEnv(KeepaliveGraceEnv)
	if !ok || v == "" {
		return DefaultKeepaliveGrace, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q is not a non-negative duration such as 2s", KeepaliveGraceEnv, v)
	}
	return d, nil
}

// keepaliveWatch watches the read end of the keepalive pipe. The supervisor
// holds the only write end and never writes; when every copy of the write
// end is closed (the supervisor exited, crashed or let the box go), a read
// returns EOF.
type keepaliveWatch struct {
	f    *os.File
	lost chan struct{} // closed when the supervisor is gone
	done chan struct{} // closed when the watching goroutine has returned
}

// watchKeepalive starts watching fd. The descriptor is switched to
// non-blocking first so that os.NewFile registers it with the runtime's
// poller: the waiting read then parks a goroutine, not an OS thread.
func watchKeepalive(fd inheritedFD) (*keepaliveWatch, error) {
	if err := unix.SetNonblock(fd.fd, true); err != nil {
		return nil, fmt.Errorf("keepalive fd %d: set non-blocking: %w", fd.fd, err)
	}
	w := &keepaliveWatch{
		f:    os.NewFile(uintptr(fd.fd), "keepalive-pipe"),
		lost: make(chan struct{}),
		done: make(chan struct{}),
	}
	go w.run()
	return w, nil
}

func (w *keepaliveWatch) run() {
	defer close(w.done)
	buf := make([]byte, 64)
	for {
		// Bytes, should a supervisor ever write any, carry no meaning.
		if _, err := w.f.Read(buf); err != nil {
			// EOF or a broken pipe: the supervisor is gone. os.ErrClosed:
			// the shim itself stopped watching (stop); nobody listens then.
			close(w.lost)
			return
		}
	}
}

// Lost returns a channel closed when the supervisor is gone. A nil watch
// (detached box) returns nil, a channel that never fires.
func (w *keepaliveWatch) Lost() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.lost
}

// stop closes the pipe and waits for the watching goroutine to return.
func (w *keepaliveWatch) stop() {
	if w == nil {
		return
	}
	_ = w.f.Close()
	<-w.done
}
