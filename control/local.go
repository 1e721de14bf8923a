package control

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// localShutdownTimeout bounds Local.Close's supervisor shutdown. Leaving
// boxes running takes milliseconds; the bound only guards against a wedged
// actor system.
const localShutdownTimeout = 30 * time.Second

// Local is the Backend over a Supervisor in this process.
type Local struct {
	sup    *actors.Supervisor
	own    bool    // Close shuts sup down
	server *Server // serving the control socket while open, or nil

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// NewLocal adapts a Supervisor that the caller owns: Close does not shut it
// down. The control Server and the Exporter use one of these.
func NewLocal(sup *actors.Supervisor) *Local {
	return &Local{sup: sup, closed: make(chan struct{})}
}

// OpenLocal opens a Supervisor of its own on cfg.Home (messages.ErrHomeLocked
// when another process holds the home). Close shuts it down with
// actors.LeaveRunning.
func OpenLocal(cfg actors.Config) (*Local, error) {
	sup, err := actors.NewSupervisor(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	l := NewLocal(sup)
	l.own = true
	return l, nil
}

// Supervisor returns the Supervisor the Local drives.
func (l *Local) Supervisor() *actors.Supervisor { return l.sup }

// Serve makes l serve the control socket at path until Close, so that other
// commands reach this home through it meanwhile instead of failing on the
// home lock.
func (l *Local) Serve(path string, opts ServerOptions) error {
	srv, err := Listen(l.sup, path, opts)
	if err != nil {
		return err
	}
	l.server = srv
	return nil
}

// Start implements Backend.
func (l *Local) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	return l.sup.Start(ctx, req)
}

// Stop implements Backend.
func (l *Local) Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error) {
	return l.sup.Stop(ctx, id, timeout)
}

// StartExisting implements Backend.
func (l *Local) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	return l.sup.StartExisting(ctx, id)
}

// Kill implements Backend.
func (l *Local) Kill(ctx context.Context, id string) (messages.BoxStatus, error) {
	return l.sup.Kill(ctx, id)
}

// Signal implements Backend.
func (l *Local) Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error) {
	return l.sup.Signal(ctx, id, signal)
}

// Remove implements Backend.
func (l *Local) Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error) {
	return l.sup.Remove(ctx, id, force)
}

// Status implements Backend.
func (l *Local) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	return l.sup.Status(ctx, id)
}

// Inspect implements Backend.
func (l *Local) Inspect(ctx context.Context, id string) (messages.BoxInspect, error) {
	return l.sup.Inspect(ctx, id)
}

// List implements Backend.
func (l *Local) List(ctx context.Context, sel Selection) ([]messages.BoxStatus, error) {
	if !sel.Since.IsZero() || !sel.Until.IsZero() {
		return nil, messages.Errorf(messages.ErrBadSpec, "list: since and until select events, not boxes")
	}
	boxes, err := l.sup.List(ctx, actors.ListOptions{Labels: sel.Labels, States: sel.States})
	if err != nil || len(sel.Boxes) == 0 {
		return boxes, err
	}
	out := boxes[:0:0]
	for _, st := range boxes {
		if slices.Contains(sel.Boxes, st.ID) {
			out = append(out, st)
		}
	}
	return out, nil
}

// Adopt implements Backend.
func (l *Local) Adopt(ctx context.Context, id string, pid int) (messages.BoxStatus, error) {
	return l.sup.Adopt(ctx, id, pid)
}

// Update implements Backend.
func (l *Local) Update(ctx context.Context, u messages.UpdateBox) (messages.BoxStatus, error) {
	return l.sup.Update(ctx, u)
}

// runStopTimeout bounds the stop of a run whose caller went away.
const runStopTimeout = 2 * time.Minute

// Run implements Backend.
func (l *Local) Run(ctx context.Context, req messages.StartBox, remove bool, hooks RunHooks) (messages.BoxStatus, error) {
	exit, err := l.sup.Wait(ctx, req.ID)
	if err != nil {
		return messages.BoxStatus{ID: req.ID}, err
	}
	st, err := l.sup.Start(ctx, req)
	if err != nil {
		if remove && !errors.Is(err, messages.ErrAlreadyExists) {
			// --rm covers a box that failed to start too; one that already
			// existed is someone else's and stays.
			_, _ = l.sup.Remove(context.WithoutCancel(ctx), req.ID, true)
		}
		return st, err
	}
	if hooks.Started != nil {
		hooks.Started(st)
	}
	var runErr error
	select {
	case <-exit:
	case <-ctx.Done():
		// The caller went away (for a Client: its connection broke): the
		// box it held stops with it.
		runErr = ctx.Err()
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runStopTimeout)
		defer cancel()
		if _, err := l.sup.Stop(stopCtx, req.ID, 0); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	final, statusErr := l.sup.Status(context.WithoutCancel(ctx), req.ID)
	if hooks.Ended != nil {
		// Before the removal: the caller may still be reading the box's
		// files (its console).
		hooks.Ended(final)
	}
	if statusErr != nil {
		return final, errors.Join(runErr, statusErr)
	}
	if remove {
		if _, err := l.sup.Remove(context.WithoutCancel(ctx), req.ID, true); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	return final, runErr
}

// Events implements Backend. With sel.Since the history comes first; with
// sel.Until the stream ends (nil error) once that time has come, at once
// after the history when it is past.
func (l *Local) Events(ctx context.Context, sel Selection, fn func(messages.Event)) error {
	selector, err := labels.Parse(sel.Labels)
	if err != nil {
		return err
	}
	filter := actors.EventFilter{Boxes: sel.Boxes, Kinds: sel.Kinds, Labels: selector, Since: sel.Since}
	until := sel.Until
	send := func(ev messages.Event) {
		if _, marker := ev.(messages.EventsLagged); until.IsZero() || marker || !ev.Header().At.After(until) {
			fn(ev)
		}
	}
	if !until.IsZero() && !until.After(time.Now()) {
		for _, ev := range l.sup.EventHistory(filter) {
			send(ev)
		}
		return nil
	}
	cancel := l.sup.Subscribe(filter, send)
	defer cancel()
	var untilC <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		untilC = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-untilC:
		return nil
	case <-l.closed:
		return messages.Errorf(messages.ErrShuttingDown, "stopped following events")
	}
}

// Metrics implements Backend.
func (l *Local) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	return l.sup.Metrics(ctx, id)
}

// MetricsAll implements Backend.
func (l *Local) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	return l.sup.MetricsAll(ctx)
}

// Wait implements Backend, through Supervisor.Wait: it follows the box's
// events, so it never polls and never misses the moment the box comes to
// rest.
func (l *Local) Wait(ctx context.Context, id string) (messages.BoxStatus, error) {
	exit, err := l.sup.Wait(ctx, id)
	if err != nil {
		return messages.BoxStatus{ID: id}, err
	}
	// Unlike Supervisor.Wait, a Backend waits for a box that exists.
	if st, err := l.sup.Status(ctx, id); errors.Is(err, messages.ErrNotFound) {
		return st, err
	}
	select {
	case ex, ok := <-exit:
		if !ok {
			if err := ctx.Err(); err != nil {
				return messages.BoxStatus{ID: id}, err
			}
			if st, err := l.sup.Status(ctx, id); err != nil && !errors.Is(err, messages.ErrNotFound) {
				return st, err // the supervisor shut down
			}
			return messages.BoxStatus{ID: id}, messages.Errorf(messages.ErrNotFound, "%q was removed", id)
		}
		st, err := l.sup.Status(ctx, id)
		if err != nil {
			return messages.BoxStatus{ID: id, State: ex.State, LastExit: ex.Exit, Reason: ex.Reason}, err
		}
		st.State, st.LastExit, st.Reason = ex.State, ex.Exit, ex.Reason // as it came to rest
		return st, nil
	case <-l.closed:
		return messages.BoxStatus{ID: id}, messages.Errorf(messages.ErrShuttingDown, "stopped waiting for box %q", id)
	}
}

// Home implements Backend.
func (l *Local) Home() string { return l.sup.Home() }

// Close implements Backend: it stops serving the control socket, ends
// pending Waits and, when the Local opened its own Supervisor, shuts it down
// leaving boxes running. It is idempotent.
func (l *Local) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		var errs []error
		if l.server != nil {
			errs = append(errs, l.server.Close())
		}
		if l.own {
			ctx, cancel := context.WithTimeout(context.Background(), localShutdownTimeout)
			defer cancel()
			errs = append(errs, l.sup.Shutdown(ctx, actors.LeaveRunning))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}
