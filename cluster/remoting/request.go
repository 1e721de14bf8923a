package remoting

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

// inbox is a one-shot process in the registry that hands the first message
// it receives to a channel. A reply from another host arrives through
// remote's endpoint reader, which delivers to the registry like any local
// send. Unlike a future, an inbox whose caller gave up is simply removed.
type inbox struct{ ch chan any }

func (i *inbox) SendUserMessage(_ *actor.PID, message any) {
	select {
	case i.ch <- actor.UnwrapEnvelopeMessage(message):
	default:
	}
}
func (i *inbox) SendSystemMessage(*actor.PID, any) {}
func (i *inbox) Stop(*actor.PID)                   {}

// Request sends msg (a message of package messages) to pid, possibly on
// another host, and returns the decoded reply. It waits until the reply, the
// end of ctx, or timeout. A *messages.Error reply is returned as the error;
// a reply this build cannot decode is an error that wraps wire's, never a
// panic.
func Request(ctx context.Context, system *actor.ActorSystem, pid *actor.PID, msg any, timeout time.Duration) (any, error) {
	env, err := wire.Encode(msg)
	if err != nil {
		return nil, err
	}
	box := &inbox{ch: make(chan any, 1)}
	reg := system.ProcessRegistry
	self, ok := reg.Add(box, "boxsup-remote-reply-"+reg.NextId())
	if !ok {
		return nil, messages.Errorf(messages.ErrInternal, "registering a reply inbox failed")
	}
	defer reg.Remove(self)
	system.Root.RequestWithCustomSender(pid, env, self)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-box.ch:
		switch r := v.(type) {
		case *wire.Envelope:
			out, err := wire.Decode(r)
			if e, ok := out.(*messages.Error); ok && err == nil {
				return nil, e // a refusal crosses as an Error reply
			}
			return out, err
		case *actor.DeadLetterResponse:
			return nil, messages.Errorf(messages.ErrNotFound, "no actor %s at %s", r.Target.GetId(), r.Target.GetAddress())
		default:
			return nil, fmt.Errorf("%w: reply of type %T", wire.ErrUnknownType, v)
		}
	case <-t.C:
		// Unknown, not failed: the request may have been carried out.
		return nil, messages.Errorf(messages.ErrTimeout, "no reply from %s within %s", pid.GetAddress(), timeout.Round(time.Millisecond))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Respond answers the sender of the current message with reply, encoded
// for the wire. An actor that receives *wire.Envelope calls it after
// Decode; a reply that cannot be encoded is answered with the error.
func Respond(ctx actor.Context, reply any) {
	env, err := wire.Encode(reply)
	if err != nil {
		env, err = wire.Encode(messages.Errorf(messages.ErrInternal, "encoding the reply: %v", err))
		if err != nil {
			return // an *messages.Error always encodes
		}
	}
	ctx.Respond(env)
}
