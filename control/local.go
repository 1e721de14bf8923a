package control

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/boxsup/boxsup/actors"
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

// List implements Backend.
func (l *Local) List(ctx context.Context) ([]messages.BoxStatus, error) {
	return l.sup.List(ctx, actors.ListOptions{})
}

// Metrics implements Backend.
func (l *Local) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	return l.sup.Metrics(ctx, id)
}

// MetricsAll implements Backend.
func (l *Local) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	return l.sup.MetricsAll(ctx)
}

// Wait implements Backend: it follows the box's lifecycle events and checks
// its status after each, so it never polls.
func (l *Local) Wait(ctx context.Context, id string) (messages.BoxStatus, error) {
	changed := make(chan struct{}, 1)
	// Subscribe before the first Status, so no transition falls between them.
	cancel := l.sup.Subscribe(actors.EventFilter{Boxes: []string{id}}, func(ev messages.Event) {
		if ev.Box() != id {
			return
		}
		select {
		case changed <- struct{}{}:
		default: // a check is already due; it reads the latest status
		}
	})
	defer cancel()
	for {
		st, err := l.sup.Status(ctx, id)
		if err != nil || AtRest(st.State) {
			return st, err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return st, ctx.Err()
		case <-l.closed:
			return st, messages.Errorf(messages.ErrShuttingDown, "stopped waiting for box %q", id)
		}
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
