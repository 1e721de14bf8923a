package control

import (
	"context"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// operation is one request of the control API: the single list of them.
// The server answers through serve; the Client sends the request its
// Backend method builds; the test in ops_test.go checks that every Backend
// method (and the matching actors.Supervisor method) has exactly one
// operation, so adding one is one row here plus its method on each side.
type operation struct {
	op Op
	// method is the Backend method the operation serves ("" for ping).
	method string
	// query: answering it changes nothing, so a client may send it again
	// to another server when the first went away mid-request.
	query bool
	// long: it lasts as long as the box or the client wants (wait, run,
	// events), so a server that closes ends it instead of waiting for it.
	long bool
	// bound is how long the client waits for the answer (0: none, the
	// server's liveness is watched instead); see Client.deadline for the
	// operations whose bound depends on the request.
	bound time.Duration
	// serve answers the request on a server; x sends the extra lines
	// before the answer (run's Started and Ended, every event).
	serve func(ctx context.Context, b Backend, req *Request, x *exchange) Response
}

// exchange is what an operation's server side does on its connection
// besides answering.
type exchange struct {
	// send writes an extra line before the answer.
	send func(Response) error
	// awaitingRelease, when set (tests), is called once a run has sent
	// its Ended line and waits for its client's release.
	awaitingRelease func(id string)
}

// release sends the Ended line of run id and waits until its client
// releases the box: half-closes the connection once it has read the box's
// console, or hangs up (dead or not, a client that is gone needs nothing
// more). Both end ctx, as does the server's closing.
func (x *exchange) release(ctx context.Context, id string, st messages.BoxStatus) {
	st.Err = nil // the error travels once, in the answer
	_ = x.send(Response{Status: &st, Ended: true})
	if x.awaitingRelease != nil {
		x.awaitingRelease(id)
	}
	<-ctx.Done()
}

// operations lists the control API.
var operations = []operation{
	{op: OpPing, query: true, bound: DefaultRequestTimeout},
	{op: OpStart, method: "Start", serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		if req.Start == nil {
			return errorResponse(messages.Errorf(messages.ErrBadSpec, "control request: start without a box"))
		}
		return statusReply(b.Start(ctx, *req.Start))
	}},
	{op: OpStartAgain, method: "StartExisting", serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.StartExisting(ctx, req.ID))
	}},
	{op: OpRun, method: "Run", long: true, serve: func(ctx context.Context, b Backend, req *Request, x *exchange) Response {
		if req.Start == nil {
			return errorResponse(messages.Errorf(messages.ErrBadSpec, "control request: run without a box"))
		}
		hooks := RunHooks{Started: func(st messages.BoxStatus) {
			_ = x.send(Response{Status: &st, Started: true})
		}}
		if req.Release {
			// Run removes the box (Remove) only once this returns.
			hooks.Ended = func(st messages.BoxStatus) { x.release(ctx, req.Start.ID, st) }
		}
		return statusReply(b.Run(ctx, *req.Start, req.Remove, hooks))
	}},
	{op: OpStop, method: "Stop", serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Stop(ctx, req.ID, req.Timeout))
	}},
	{op: OpKill, method: "Kill", serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Kill(ctx, req.ID))
	}},
	{op: OpSignal, method: "Signal", bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Signal(ctx, req.ID, req.Signal))
	}},
	{op: OpRemove, method: "Remove", serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Remove(ctx, req.ID, req.Force))
	}},
	{op: OpAdopt, method: "Adopt", bound: DefaultRequestTimeout + requestMargin, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Adopt(ctx, req.ID, req.PID))
	}},
	{op: OpUpdate, method: "Update", bound: DefaultRequestTimeout + requestMargin, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		if req.Update == nil {
			return errorResponse(messages.Errorf(messages.ErrBadSpec, "control request: update without changes"))
		}
		return statusReply(b.Update(ctx, *req.Update))
	}},
	{op: OpStatus, method: "Status", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Status(ctx, req.ID))
	}},
	{op: OpInspect, method: "Inspect", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		in, err := b.Inspect(ctx, req.ID)
		return Response{Inspect: &in, Error: wireError(err)}
	}},
	{op: OpList, method: "List", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		var sel Selection
		if req.Select != nil {
			sel = *req.Select
		}
		boxes, err := b.List(ctx, sel)
		return Response{Boxes: boxes, Error: wireError(err)}
	}},
	{op: OpMetrics, method: "Metrics", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		m, err := b.Metrics(ctx, req.ID)
		return Response{Metrics: &m, Error: wireError(err)}
	}},
	{op: OpMetricsAll, method: "MetricsAll", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		all, err := b.MetricsAll(ctx)
		return Response{AllMetrics: all, Error: wireError(err)}
	}},
	{op: OpWait, method: "Wait", query: true, long: true, serve: func(ctx context.Context, b Backend, req *Request, _ *exchange) Response {
		return statusReply(b.Wait(ctx, req.ID))
	}},
	{op: OpEvents, method: "Events", query: true, long: true, serve: func(ctx context.Context, b Backend, req *Request, x *exchange) Response {
		var sel Selection
		if req.Select != nil {
			sel = *req.Select
		}
		err := b.Events(ctx, sel, func(ev messages.Event) {
			if line, err := encodeEvent(ev); err == nil {
				_ = x.send(Response{Event: line})
			}
		})
		return Response{Error: wireError(err)}
	}},
}

// operationFor returns the table row of op.
func operationFor(op Op) (operation, bool) {
	for _, o := range operations {
		if o.op == op {
			return o, true
		}
	}
	return operation{}, false
}

func errorResponse(err *messages.Error) Response { return Response{Error: err} }
