package actors

import (
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
)

type fanTarget struct {
	pid *actor.PID
	msg any
}

// aggregator sends one request to each target and collects the replies:
// MetricsResponse into a MetricsAllResponse, BoxStatus (from Stop) into a
// stopAllDone. It answers once when all replied or the timeout passed, then
// stops itself.
type aggregator struct {
	targets []fanTarget
	replyTo *actor.PID
	timeout time.Duration
	stop    bool // collecting Stop replies rather than metrics

	waiting int
	metrics []messages.BoxMetrics
	stopped int
	errs    []string
	done    bool
}

// Receive implements actor.Actor.
func (g *aggregator) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.waiting = len(g.targets)
		for _, t := range g.targets {
			ctx.Request(t.pid, t.msg)
		}
		if g.waiting == 0 {
			g.finish(ctx)
			return
		}
		ctx.SetReceiveTimeout(g.timeout)
	case *messages.MetricsResponse:
		if m.Err == nil {
			g.metrics = append(g.metrics, m.Metrics)
		}
		g.arrived(ctx)
	case messages.BoxStatus:
		if m.Err != nil {
			g.errs = append(g.errs, m.Err.Msg)
		} else {
			g.stopped++
		}
		g.arrived(ctx)
	case *actor.ReceiveTimeout:
		g.errs = append(g.errs, "timed out waiting for some boxes")
		g.finish(ctx)
	}
}

func (g *aggregator) arrived(ctx actor.Context) {
	g.waiting--
	if g.waiting <= 0 {
		g.finish(ctx)
	}
}

func (g *aggregator) finish(ctx actor.Context) {
	if g.done {
		return
	}
	g.done = true
	ctx.CancelReceiveTimeout()
	if g.stop {
		ctx.Send(g.replyTo, &stopAllDone{stopped: g.stopped, errs: g.errs})
		ctx.Stop(ctx.Self())
		return
	}
	sort.Slice(g.metrics, func(i, j int) bool { return g.metrics[i].ID < g.metrics[j].ID })
	ctx.Send(g.replyTo, &messages.MetricsAllResponse{Boxes: g.metrics})
	ctx.Stop(ctx.Self())
}
