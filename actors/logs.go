package actors

import (
	"context"
	"io"
	"time"

	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/messages"
)

// LogOptions select what Logs returns. The zero value is the box's whole
// console (both streams, as its shim recorded them, across rotated files)
// up to its current end.
type LogOptions struct {
	// Follow keeps the reader open as the box writes, across rotations,
	// until the box comes to rest (exited or failed; a box waiting to be
	// restarted is not at rest), the supervisor shuts down, ctx ends or the
	// reader is closed.
	Follow bool
	// Tail, when positive, starts with the last Tail lines; 0 starts at the
	// beginning; boxlog.TailNone at the end (with Follow: only new output).
	Tail int
	// Since, when set, keeps only the lines the shim recorded at or after it.
	Since time.Time
	// Stream, when set (boxlog.Stdout, boxlog.Stderr), keeps only that
	// stream.
	Stream boxlog.Stream
	// Timestamps starts each line with its time (RFC 3339, UTC) and a space.
	Timestamps bool
}

// shutdownCheckInterval is how often a follower's watch looks whether the
// supervisor is shutting down, the one change no event announces.
const shutdownCheckInterval = time.Second

// Logs returns a reader over box id's console output: the guest's stdout
// and stderr as its shim recorded them (console.log and its rotated files;
// see package boxlog). The reader reads files only, so it serves boxes
// started by an earlier supervisor as well. ctx bounds the whole read, not
// just the call; Close the reader when done. Errors: messages.ErrNotFound
// for an unknown box, ErrInvalidID, ErrBadSpec for options that cannot be
// honoured.
func (s *Supervisor) Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error) {
	if _, err := s.Status(ctx, id); err != nil {
		return nil, err
	}
	box, err := s.core.home.Box(id)
	if err != nil {
		return nil, err
	}
	bo := boxlog.Options{Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since, Stream: opts.Stream, Timestamps: opts.Timestamps}
	if !opts.Follow {
		return boxlog.Open(ctx, box.ConsoleLogPath(), bo)
	}
	ended, watched := make(chan struct{}), make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	go func() {
		defer close(watched)
		s.closeAtRest(watchCtx, id, ended)
	}()
	bo.Ended = ended
	r, err := boxlog.Open(ctx, box.ConsoleLogPath(), bo)
	if err != nil {
		stopWatch()
		<-watched
		return nil, err
	}
	return &followedLog{ReadCloser: r, stopWatch: stopWatch, watched: watched}, nil
}

// closeAtRest closes ended once box id is at rest, gone, or the supervisor
// is shutting down; it returns without closing it when ctx ends. It follows
// the box's events and checks its status after each, as a Wait does.
func (s *Supervisor) closeAtRest(ctx context.Context, id string, ended chan<- struct{}) {
	changed := make(chan struct{}, 1)
	// Subscribe before the first Status, so no transition falls between them.
	cancel := s.Subscribe(EventFilter{Boxes: []string{id}}, func(messages.Event) {
		select {
		case changed <- struct{}{}:
		default: // a check is due already; it reads the latest status
		}
	})
	defer cancel()
	check := time.NewTicker(shutdownCheckInterval)
	defer check.Stop()
	for {
		if s.core.shutting.Load() {
			close(ended)
			return
		}
		st, err := s.Status(ctx, id)
		if ctx.Err() != nil {
			return
		}
		if err != nil || st.State == messages.StateExited || st.State == messages.StateFailed {
			close(ended)
			return
		}
		select {
		case <-changed:
		case <-check.C:
		case <-ctx.Done():
			return
		}
	}
}

// followedLog is a following reader with the watch that ends it.
type followedLog struct {
	io.ReadCloser
	stopWatch context.CancelFunc
	watched   chan struct{}
}

// Close ends the read and the watch.
func (f *followedLog) Close() error {
	err := f.ReadCloser.Close()
	f.stopWatch()
	<-f.watched
	return err
}
