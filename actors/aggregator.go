package actors

import (
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
)

type fanTarget struct {
	id  string
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

	pending map[string]*actor.PID // targets that have not answered, by box ID
	metrics []messages.BoxMetrics
	stopped int
	errs    []string
	done    bool
}

// Receive implements actor.Actor.
func (g *aggregator) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		g.pending = make(map[string]*actor.PID, len(g.targets))
		for _, t := range g.targets {
			g.pending[t.id] = t.pid
			// A box actor that stops before answering (removed, given up
			// on, shut down) drops or dead-letters the request: watching it
			// turns that into a Terminated, so no sweep waits for its
			// timeout.
			ctx.Watch(t.pid)
			ctx.Request(t.pid, t.msg)
		}
		if len(g.pending) == 0 {
			g.finish(ctx)
			return
		}
		ctx.SetReceiveTimeout(g.timeout)
	case *messages.MetricsResponse:
		if m.Err == nil {
			g.metrics = append(g.metrics, m.Metrics)
		}
		g.arrived(ctx, m.Metrics.ID)
	case messages.BoxStatus:
		if m.Err != nil {
			g.errs = append(g.errs, m.Err.Msg)
		} else {
			g.stopped++
		}
		g.arrived(ctx, m.ID)
	case *actor.Terminated:
		g.arrived(ctx, g.idOf(m.Who))
	case *actor.DeadLetterResponse:
		g.arrived(ctx, g.idOf(m.Target))
	case *actor.ReceiveTimeout:
		g.errs = append(g.errs, "timed out waiting for some boxes")
		g.finish(ctx)
	}
}

// arrived records that box id answered (or can no longer answer).
func (g *aggregator) arrived(ctx actor.Context, id string) {
	pid, ok := g.pending[id]
	if !ok {
		return // a duplicate, e.g. Terminated after the reply
	}
	delete(g.pending, id)
	ctx.Unwatch(pid)
	if len(g.pending) == 0 {
		g.finish(ctx)
	}
}

// idOf finds the pending target with that PID.
func (g *aggregator) idOf(pid *actor.PID) string {
	for id, p := range g.pending {
		if p.Equal(pid) {
			return id
		}
	}
	return ""
}

func (g *aggregator) finish(ctx actor.Context) {
	if g.done {
		return
	}
	g.done = true
	ctx.CancelReceiveTimeout()
	for _, pid := range g.pending {
		ctx.Unwatch(pid)
	}
	if g.stop {
		ctx.Send(g.replyTo, &stopAllDone{stopped: g.stopped, errs: g.errs})
		ctx.Stop(ctx.Self())
		return
	}
	sort.Slice(g.metrics, func(i, j int) bool { return g.metrics[i].ID < g.metrics[j].ID })
	ctx.Send(g.replyTo, &messages.MetricsAllResponse{Boxes: g.metrics})
	ctx.Stop(ctx.Self())
}
