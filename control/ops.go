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
	// serve answers the request on a server; write sends an extra line
	// before the answer (run's Started, every event).
	serve func(ctx context.Context, b Backend, req *Request, write func(Response) error) Response
}

// operations lists the control API.
var operations = []operation{
	{op: OpPing, query: true, bound: DefaultRequestTimeout},
	{op: OpStart, method: "Start", serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		if req.Start == nil {
			return errorResponse(messages.Errorf(messages.ErrBadSpec, "control request: start without a box"))
		}
		return statusReply(b.Start(ctx, *req.Start))
	}},
	{op: OpStartAgain, method: "StartExisting", serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.StartExisting(ctx, req.ID))
	}},
	{op: OpRun, method: "Run", long: true, serve: func(ctx context.Context, b Backend, req *Request, write func(Response) error) Response {
		if req.Start == nil {
			return errorResponse(messages.Errorf(messages.ErrBadSpec, "control request: run without a box"))
		}
		return statusReply(b.Run(ctx, *req.Start, req.Remove, func(st messages.BoxStatus) {
			_ = write(Response{Status: &st, Started: true})
		}))
	}},
	{op: OpStop, method: "Stop", serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Stop(ctx, req.ID, req.Timeout))
	}},
	{op: OpKill, method: "Kill", serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Kill(ctx, req.ID))
	}},
	{op: OpSignal, method: "Signal", bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Signal(ctx, req.ID, req.Signal))
	}},
	{op: OpRemove, method: "Remove", serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Remove(ctx, req.ID, req.Force))
	}},
	{op: OpAdopt, method: "Adopt", bound: DefaultRequestTimeout + requestMargin, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Adopt(ctx, req.ID, req.PID))
	}},
	{op: OpUpdate, method: "Update", bound: DefaultRequestTimeout + requestMargin, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		if req.Update == nil {
			return errorResponse(messages.Errorf(messages.ErrBadSpec, "control request: update without changes"))
		}
		return statusReply(b.Update(ctx, *req.Update))
	}},
	{op: OpStatus, method: "Status", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Status(ctx, req.ID))
	}},
	{op: OpInspect, method: "Inspect", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		in, err := b.Inspect(ctx, req.ID)
		return Response{Inspect: &in, Error: wireError(err)}
	}},
	{op: OpList, method: "List", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		var sel Selection
		if req.Select != nil {
			sel = *req.Select
		}
		boxes, err := b.List(ctx, sel)
		return Response{Boxes: boxes, Error: wireError(err)}
	}},
	{op: OpMetrics, method: "Metrics", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		m, err := b.Metrics(ctx, req.ID)
		return Response{Metrics: &m, Error: wireError(err)}
	}},
	{op: OpMetricsAll, method: "MetricsAll", query: true, bound: DefaultRequestTimeout, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		all, err := b.MetricsAll(ctx)
		return Response{AllMetrics: all, Error: wireError(err)}
	}},
	{op: OpWait, method: "Wait", query: true, long: true, serve: func(ctx context.Context, b Backend, req *Request, _ func(Response) error) Response {
		return statusReply(b.Wait(ctx, req.ID))
	}},
	{op: OpEvents, method: "Events", query: true, long: true, serve: func(ctx context.Context, b Backend, req *Request, write func(Response) error) Response {
		var sel Selection
		if req.Select != nil {
			sel = *req.Select
		}
		err := b.Events(ctx, sel, func(ev messages.Event) {
			if line, err := encodeEvent(ev); err == nil {
				_ = write(Response{Event: line})
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
