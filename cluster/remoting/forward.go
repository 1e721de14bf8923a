package remoting

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

// Forward lets an actor that speaks plain messages serve peers on other
// hosts unchanged. It decodes env and sends the message to `to` as a local
// request whose sender is a one-shot reply adaptor: the first reply sent to
// the adaptor, from whichever local actor answers, is encoded and sent on to
// replyTo, the asker on the other host. The adaptor is removed after that
// reply, or after ttl if none comes. An envelope that does not decode is
// answered at once with a messages.Error (ErrBadSpec, naming wire's error).
// With replyTo nil (a send, not a request) the message is just delivered.
//
// A root supervisor serves remote peers with one line:
//
//	case *wire.Envelope:
//		remoting.Forward(ctx.ActorSystem(), m, ctx.Sender(), ctx.Self(), timeout)
func Forward(system *actor.ActorSystem, env *wire.Envelope, replyTo, to *actor.PID, ttl time.Duration) {
	forward(system, env, replyTo, to, ttl)
}

// forward is Forward, returning the adaptor's PID (nil when none) for tests.
func forward(system *actor.ActorSystem, env *wire.Envelope, replyTo, to *actor.PID, ttl time.Duration) *actor.PID {
	msg, err := wire.Decode(env)
	if err != nil {
		if replyTo != nil {
			if reply, encErr := wire.Encode(messages.Errorf(messages.ErrBadSpec, "%v", err)); encErr == nil {
				system.Root.Send(replyTo, reply)
			}
		}
		return nil
	}
	if replyTo == nil {
		system.Root.Send(to, msg)
		return nil
	}
	a := &replyAdaptor{system: system, replyTo: replyTo}
	reg := system.ProcessRegistry
	self, ok := reg.Add(a, "boxsup-remote-adaptor-"+reg.NextId())
	if !ok {
		if reply, encErr := wire.Encode(messages.Errorf(messages.ErrInternal, "registering a reply adaptor failed")); encErr == nil {
			system.Root.Send(replyTo, reply)
		}
		return nil
	}
	a.self = self
	a.timer = time.AfterFunc(ttl, a.remove)
	system.Root.RequestWithCustomSender(to, msg, self)
	return self
}

// replyAdaptor encodes the first reply it receives and sends it to the
// remote asker.
type replyAdaptor struct {
	system  *actor.ActorSystem
	replyTo *actor.PID
	self    *actor.PID
	timer   *time.Timer
	once    sync.Once
}

func (a *replyAdaptor) SendUserMessage(_ *actor.PID, message any) {
	a.once.Do(func() {
		a.timer.Stop()
		a.system.ProcessRegistry.Remove(a.self)
		reply := actor.UnwrapEnvelopeMessage(message)
		if dl, ok := reply.(*actor.DeadLetterResponse); ok {
			reply = messages.Errorf(messages.ErrShuttingDown, "no actor to answer (%s)", dl.Target.GetId())
		}
		env, err := wire.Encode(reply)
		if err != nil {
			env, err = wire.Encode(messages.Errorf(messages.ErrInternal, "the reply cannot cross hosts: %v", err))
			if err != nil {
				return
			}
		}
		a.system.Root.Send(a.replyTo, env)
	})
}

func (a *replyAdaptor) SendSystemMessage(*actor.PID, any) {}
func (a *replyAdaptor) Stop(*actor.PID)                   {}

// remove drops an adaptor nobody answered; the asker times out on its side.
func (a *replyAdaptor) remove() {
	a.once.Do(func() { a.system.ProcessRegistry.Remove(a.self) })
}
