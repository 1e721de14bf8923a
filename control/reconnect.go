package control

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// reconnectTries bounds how often one request is sent again to a new
// server.
const reconnectTries = 3

// reconnecting is the Backend Connect returns. It forwards to a Client or a
// Local; when the server it talks to goes away in the middle of a request
// that may be sent again, it connects anew and sends it again:
//   - a request the server did not serve (it was closing) is sent again,
//     whatever it is;
//   - a query (status, list, metrics, wait, events: nothing changes when
//     it is answered) is sent again when the connection broke (also while
//     it was being sent: EPIPE, ECONNRESET) or the socket vanished before
//     the answer;
//   - anything else is not (a start may have happened): its error stands.
type reconnecting struct {
	connect func(context.Context) (Backend, error)

	mu  sync.Mutex
	cur Backend
}

func (r *reconnecting) current() Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// reconnect replaces failed with a new connection, unless another call did
// already.
func (r *reconnecting) reconnect(ctx context.Context, failed Backend) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != failed {
		return nil
	}
	b, err := r.connect(ctx)
	if err != nil {
		return err
	}
	_ = failed.Close()
	r.cur = b
	return nil
}

// call runs f against the current backend, and again against a new one as
// the rules above allow.
func call[T any](r *reconnecting, ctx context.Context, op Op, f func(Backend) (T, error)) (T, error) {
	o, _ := operationFor(op)
	for try := 1; ; try++ {
		b := r.current()
		v, err := f(b)
		if err == nil || try >= reconnectTries || ctx.Err() != nil || !resendable(err, o.query) {
			return v, err
		}
		if rerr := r.reconnect(ctx, b); rerr != nil {
			return v, errors.Join(err, rerr)
		}
	}
}

// resendable reports whether a failed request may be sent again.
func resendable(err error, query bool) bool {
	var ns *notServedError
	if errors.As(err, &ns) {
		return true
	}
	if !query {
		return false
	}
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, errHungUp)
}

func (r *reconnecting) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	return call(r, ctx, OpStart, func(b Backend) (messages.BoxStatus, error) { return b.Start(ctx, req) })
}

func (r *reconnecting) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	return call(r, ctx, OpStartAgain, func(b Backend) (messages.BoxStatus, error) { return b.StartExisting(ctx, id) })
}

func (r *reconnecting) Run(ctx context.Context, req messages.StartBox, remove bool, hooks RunHooks) (messages.BoxStatus, error) {
	return call(r, ctx, OpRun, func(b Backend) (messages.BoxStatus, error) { return b.Run(ctx, req, remove, hooks) })
}

func (r *reconnecting) Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error) {
	return call(r, ctx, OpStop, func(b Backend) (messages.BoxStatus, error) { return b.Stop(ctx, id, timeout) })
}

func (r *reconnecting) Kill(ctx context.Context, id string) (messages.BoxStatus, error) {
	return call(r, ctx, OpKill, func(b Backend) (messages.BoxStatus, error) { return b.Kill(ctx, id) })
}

func (r *reconnecting) Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error) {
	return call(r, ctx, OpSignal, func(b Backend) (messages.BoxStatus, error) { return b.Signal(ctx, id, signal) })
}

func (r *reconnecting) Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error) {
	return call(r, ctx, OpRemove, func(b Backend) (messages.BoxStatus, error) { return b.Remove(ctx, id, force) })
}

func (r *reconnecting) Adopt(ctx context.Context, id string, pid int) (messages.BoxStatus, error) {
	return call(r, ctx, OpAdopt, func(b Backend) (messages.BoxStatus, error) { return b.Adopt(ctx, id, pid) })
}

func (r *reconnecting) Update(ctx context.Context, u messages.UpdateBox) (messages.BoxStatus, error) {
	return call(r, ctx, OpUpdate, func(b Backend) (messages.BoxStatus, error) { return b.Update(ctx, u) })
}

func (r *reconnecting) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	return call(r, ctx, OpStatus, func(b Backend) (messages.BoxStatus, error) { return b.Status(ctx, id) })
}

func (r *reconnecting) Inspect(ctx context.Context, id string) (messages.BoxInspect, error) {
	return call(r, ctx, OpInspect, func(b Backend) (messages.BoxInspect, error) { return b.Inspect(ctx, id) })
}

func (r *reconnecting) List(ctx context.Context, sel Selection) ([]messages.BoxStatus, error) {
	return call(r, ctx, OpList, func(b Backend) ([]messages.BoxStatus, error) { return b.List(ctx, sel) })
}

func (r *reconnecting) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	return call(r, ctx, OpMetrics, func(b Backend) (messages.BoxMetrics, error) { return b.Metrics(ctx, id) })
}

func (r *reconnecting) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	return call(r, ctx, OpMetricsAll, func(b Backend) ([]messages.BoxMetrics, error) { return b.MetricsAll(ctx) })
}

func (r *reconnecting) Wait(ctx context.Context, id string) (messages.BoxStatus, error) {
	return call(r, ctx, OpWait, func(b Backend) (messages.BoxStatus, error) { return b.Wait(ctx, id) })
}

// Events is sent again only when the server did not serve it: a stream
// that broke is not resumed, because the events meanwhile would be lost
// without a word and a replay (Since) repeated; the caller hears the error.
func (r *reconnecting) Events(ctx context.Context, sel Selection, fn func(messages.Event)) error {
	for try := 1; ; try++ {
		b := r.current()
		err := b.Events(ctx, sel, fn)
		var ns *notServedError
		if err == nil || try >= reconnectTries || ctx.Err() != nil || !errors.As(err, &ns) {
			return err
		}
		if rerr := r.reconnect(ctx, b); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
}

func (r *reconnecting) Home() string { return r.current().Home() }

func (r *reconnecting) Close() error { return r.current().Close() }

// Remote reports whether b talks to a supervisor in another process (a
// boxsup supervise, or a command that serves the home for now).
func Remote(b Backend) bool {
	if r, ok := b.(*reconnecting); ok {
		b = r.current()
	}
	_, ok := b.(*Client)
	return ok
}

// unwrap returns the Client or Local behind b.
func unwrap(b Backend) Backend {
	if r, ok := b.(*reconnecting); ok {
		return r.current()
	}
	return b
}
