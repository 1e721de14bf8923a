package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
)

// replyInbox is a one-shot process in the actor system's registry that hands
// the first message sent to it to a channel. The facade uses it instead of a
// RequestFuture: a future can only be waited on by blocking in Result, so a
// caller whose context ended would leave a goroutine parked there until the
// future's own timeout. An inbox is simply removed from the registry.
type replyInbox struct {
	ch chan any
}

// SendUserMessage implements actor.Process: the first reply wins.
func (r *replyInbox) SendUserMessage(_ *actor.PID, message any) {
	select {
	case r.ch <- actor.UnwrapEnvelopeMessage(message):
	default:
	}
}

// SendSystemMessage implements actor.Process; an inbox has no lifecycle.
func (r *replyInbox) SendSystemMessage(*actor.PID, any) {}

// Stop implements actor.Process.
func (r *replyInbox) Stop(*actor.PID) {}

// ask sends msg to the root with a fresh inbox as its sender and waits for
// the reply, ctx, or timeout, whichever comes first. Nothing outlives it.
func (c *core) ask(ctx context.Context, to *actor.PID, msg any, timeout time.Duration) (any, error) {
	inbox := &replyInbox{ch: make(chan any, 1)}
	reg := c.system.ProcessRegistry
	pid, ok := reg.Add(inbox, "boxsup-reply-"+reg.NextId())
	if !ok {
		return nil, messages.Errorf(messages.ErrInternal, "registering a reply inbox failed")
	}
	defer reg.Remove(pid)
	c.root.RequestWithCustomSender(to, msg, pid)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-inbox.ch:
		if dl, ok := v.(*actor.DeadLetterResponse); ok {
			return nil, messages.Errorf(messages.ErrShuttingDown, "no actor to answer (%v)", dl.Target)
		}
		return v, nil
	case <-t.C:
		return nil, messages.Errorf(messages.ErrTimeout, "no reply within %s", timeout.Round(time.Millisecond))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
