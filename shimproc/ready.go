package shimproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

const (
	// startFailGrace is how long a shim that ended the ready handshake
	// without the byte gets to exit on its own, so that it can write
	// exit.json (with e.g. the exec failure) before it is killed.
	startFailGrace = 2 * time.Second
	// killWait bounds the wait for the exit after a SIGKILL to the tree.
	killWait = 5 * time.Second
)

// WaitReady waits until the spec was handed over and then for the shim's
// ready byte on the ready pipe, racing the shim's exit, ctx and the ready
// timeout (counted from the spawn). On failure
// it kills the box's tree and waits for the exit, then returns
// messages.ErrStartFailed (with the exit record, e.g. the exec failure),
// messages.ErrReadyTimeout, or ctx's error wrapped. It returns nil at once for
// an adopted handle, and the first outcome again when called twice.
func (h *Handle) WaitReady(ctx context.Context) error {
	h.readyMu.Lock()
	defer h.readyMu.Unlock()
	if h.readyRun {
		return h.readyErr
	}
	err := h.waitReady(ctx)
	if err != nil {
		err = redactError(err, h.secrets)
	}
	if !errors.Is(err, errHandleClosed) {
		h.readyRun, h.readyErr = true, err
	}
	return err
}

func (h *Handle) waitReady(ctx context.Context) error {
	if err := h.waitHandOver(ctx); err != nil {
		h.closeReadyPipe()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			h.abandon(0)
			return fmt.Errorf("box %s: handing the spec to the box runner: %w", h.box.ID, err)
		}
		return err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errHandleClosed
	}
	r := h.readyR
	if r == nil {
		h.mu.Unlock()
		return nil // adopted: it was ready before we came
	}
	deadline := h.readySince.Add(h.readyTimeout)
	// Set under h.mu so that the watcher's "exited" wake-up (also under
	// h.mu) cannot be overwritten by this deadline.
	_ = r.SetReadDeadline(deadline)
	exitedAlready := h.exitSeen
	h.mu.Unlock()

	var got bool
	var readErr error
	if !exitedAlready {
		stop := context.AfterFunc(ctx, func() { _ = r.SetReadDeadline(time.Unix(1, 0)) })
		var b [1]byte
		n, err := r.Read(b[:])
		stop()
		got, readErr = n == 1, err
	}
	exited := h.exitObserved()
	if !got && exited {
		got = readPendingByte(r) // written just before the shim exited
	}
	if got {
		if h.inPlace && !exited {
			h.keepRestartLine()
		} else {
			h.closeReadyPipe()
		}
		h.log.WithField("took", time.Since(h.readySince)).Info("box ready")
		return nil
	}
	defer h.closeReadyPipe()

	switch {
	case exited || errors.Is(readErr, io.EOF):
		rec, done := h.abandon(startFailGrace)
		return messages.Errorf(messages.ErrStartFailed, "box %s: the box runner ended without signalling ready: %s",
			h.box.ID, describeExit(rec, done))
	case errors.Is(readErr, os.ErrClosed):
		return errHandleClosed // Close ran meanwhile; it never signals
	case ctx.Err() != nil:
		h.abandon(0)
		return fmt.Errorf("box %s: waiting for ready: %w", h.box.ID, ctx.Err())
	case errors.Is(readErr, os.ErrDeadlineExceeded):
		h.abandon(0)
		return messages.Errorf(messages.ErrReadyTimeout, "box %s: no ready signal within %v", h.box.ID, h.readyTimeout)
	default:
		rec, done := h.abandon(0)
		return messages.Errorf(messages.ErrStartFailed, "box %s: reading the ready pipe: %v; %s", h.box.ID, readErr, describeExit(rec, done))
	}
}

// abandon gives the shim grace to exit on its own, then kills the box's tree
// and waits (bounded) for the exit. It reports the exit record and whether
// the exit was seen.
func (h *Handle) abandon(grace time.Duration) (messages.ExitRecord, bool) {
	if grace > 0 && waitClosed(h.exited, grace) {
		return h.ExitStatus(), true
	}
	if err := h.KillTree(); err != nil {
		h.log.WithError(err).Warn("killing a box that failed to start")
	}
	if waitClosed(h.exited, killWait) {
		return h.ExitStatus(), true
	}
	return messages.ExitRecord{}, false
}

// describeExit renders an exit record for an error message.
func describeExit(rec messages.ExitRecord, exited bool) string {
	if !exited {
		return "the box runner did not exit after SIGKILL"
	}
	return rec.String()
}

// exitObserved reports whether the watcher has seen the exit.
func (h *Handle) exitObserved() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exitSeen
}

// closeReadyPipe closes the ready pipe: its job is done either way.
func (h *Handle) closeReadyPipe() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.readyR != nil {
		_ = h.readyR.Close()
		h.readyR = nil
	}
}

// readPendingByte reads, without blocking, a byte already in the pipe.
func readPendingByte(r *os.File) bool {
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	conn, err := r.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	_ = conn.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _ = unix.Read(int(fd), b[:])
		return true // one attempt only: never park
	})
	return n == 1
}

// waitClosed waits up to d for ch to close.
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// redactError scrubs the spec's secrets from an error's text, keeping its
// code when it is a *messages.Error.
func redactError(err error, secrets []string) error {
	text := err.Error()
	clean := redactSecrets(text, secrets)
	if clean == text {
		return err
	}
	var typed *messages.Error
	if errors.As(err, &typed) {
		return &messages.Error{Code: typed.Code, Msg: clean}
	}
	return errors.New(clean)
}
