package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
)

// replyInbox is a one-shot process in the actor system's registry that hands
// the first message sent to it to a channel. The facade uses it instead of a
// RequestFuture: a future can only be waited on by blocking in Result, so a
// caller whose context ended would leave a goroutine parked there until the
// future's own timeout. An inbox is simply removed from the registry.
type replyInbox struct {
	ch  chan any
	pid *actor.PID
	reg *actor.ProcessRegistryValue
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

// newInbox registers a fresh inbox; close removes it.
func (c *core) newInbox() *replyInbox {
	in := &replyInbox{ch: make(chan any, 1), reg: c.system.ProcessRegistry}
	pid, _ := in.reg.Add(in, "boxsup-reply-"+in.reg.NextId())
	in.pid = pid
	return in
}

func (r *replyInbox) close() { r.reg.Remove(r.pid) }

// replyValue turns what reached an inbox into a reply or an error: a dead
// letter means nobody was there to answer.
func replyValue(v any) (any, error) {
	if dl, ok := v.(*actor.DeadLetterResponse); ok {
		if dl.Target == nil { // protoactor does not always name it
			return nil, messages.Errorf(messages.ErrShuttingDown, "no actor to answer")
		}
		return nil, messages.Errorf(messages.ErrShuttingDown, "no actor to answer (%v)", dl.Target)
	}
	return v, nil
}
