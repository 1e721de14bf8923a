package shimproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// handOver is the delivery of the spec to a spawned shim's stdin.
type handOver struct {
	done  chan struct{} // closed when the write ended
	err   error         // its outcome, set before done closes
	stdin *os.File      // the write end; nil once done
	abort func()        // makes a blocked write return at once
}

// startHandOver writes specJSON to the shim's stdin on a goroutine, bounded
// by deadline and ctx, and closes it. On failure the shim's tree is killed
// (after a grace that lets a shim that died early write exit.json, whose
// reason makes the error useful) and the error is kept for WaitReady.
func (h *Handle) startHandOver(ctx context.Context, stdin *os.File, specJSON []byte, deadline time.Time) {
	ho := &handOver{done: make(chan struct{}), stdin: stdin}
	ho.abort = func() { _ = stdin.SetWriteDeadline(time.Unix(1, 0)) }
	h.handOver = ho
	go func() {
		defer close(ho.done)
		err := writeSpec(ctx, stdin, specJSON, deadline)
		if err == nil {
			return
		}
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		switch {
		case closed:
			ho.err = errHandleClosed // Close never signals
		case ctx.Err() != nil:
			h.abandon(0)
			ho.err = fmt.Errorf("box %s: handing the spec to the box runner: %w", h.box.ID, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			rec, exited := h.abandon(0)
			// The hand-over counts against the ready timeout: a shim that
			// did not even read its spec in time was not ready in time.
			ho.err = messages.Errorf(messages.ErrReadyTimeout, "box %s: the box runner did not read its spec within the ready timeout (%v); %s",
				h.box.ID, h.readyTimeout, redactSecrets(describeExit(rec, exited), h.secrets))
		default:
			// Most likely the shim died before reading (EPIPE).
			rec, exited := h.abandon(startFailGrace)
			ho.err = messages.Errorf(messages.ErrStartFailed, "box %s: handing the spec to the box runner: %v; %s",
				h.box.ID, err, redactSecrets(describeExit(rec, exited), h.secrets))
		}
	}()
}

// waitHandOver waits until the spec was handed over and returns the
// outcome; when ctx ends first the write is aborted (the caller kills the
// shim).
func (h *Handle) waitHandOver(ctx context.Context) error {
	ho := h.handOver
	if ho == nil {
		return nil // adopted
	}
	select {
	case <-ho.done:
		return ho.err
	case <-ctx.Done():
		ho.abort()
		<-ho.done
		return ctx.Err()
	}
}

// stopHandOver aborts a hand-over in progress and waits for its goroutine
// (Close).
func (h *Handle) stopHandOver() {
	if ho := h.handOver; ho != nil {
		ho.abort()
		<-ho.done
	}
}

// writeSpec writes the spec JSON to the shim's stdin and closes it. The
// deadline (and ctx) keep a shim that never reads from hanging us.
func writeSpec(ctx context.Context, stdin *os.File, specJSON []byte, deadline time.Time) error {
	defer stdin.Close()
	if err := stdin.SetWriteDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = stdin.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := stdin.Write(specJSON)
	stop()
	if err != nil {
		return err
	}
	return stdin.Close()
}
