package remoting

import (
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

// TestForwardAdaptsPlainActorsToEnvelopes runs in one actor system without
// remote: the asker's inbox stands for a peer on another host.
func TestForwardAdaptsPlainActorsToEnvelopes(t *testing.T) {
	t.Parallel()
	system := quietSystem()
	defer system.Shutdown()
	plain := system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*messages.StatusRequest); ok && m.ID != "silent" {
			ctx.Respond(&messages.BoxStatus{ID: m.ID, State: messages.StateExited})
		}
	}))
	box := &inbox{ch: make(chan any, 1)}
	asker, _ := system.ProcessRegistry.Add(box, "asker")
	defer system.ProcessRegistry.Remove(asker)
	next := func() any {
		t.Helper()
		select {
		case v := <-box.ch:
			out, err := wire.Decode(v.(*wire.Envelope))
			if err != nil {
				t.Fatal(err)
			}
			return out
		case <-time.After(requestTimeout):
			t.Fatal("no reply")
		}
		return nil
	}
	env, _ := wire.Encode(&messages.StatusRequest{ID: "web"})
	Forward(system, env, asker, plain, time.Minute)
	if st, ok := next().(*messages.BoxStatus); !ok || st.ID != "web" || st.State != messages.StateExited {
		t.Fatalf("reply %#v", st)
	}
	Forward(system, &wire.Envelope{Type: "Nope", Version: wire.Version}, asker, plain, time.Minute)
	if e, ok := next().(*messages.Error); !ok || !errors.Is(e, messages.ErrBadSpec) {
		t.Fatalf("undecodable envelope answered %#v", e)
	}
	// Nobody answers: the adaptor goes away after its TTL, and a late
	// reply to it is a dead letter, not a message to the asker.
	silent, _ := wire.Encode(&messages.StatusRequest{ID: "silent"})
	adaptor := forward(system, silent, asker, plain, 10*time.Millisecond)
	deadline := time.Now().Add(requestTimeout)
	for {
		if _, alive := system.ProcessRegistry.GetLocal(adaptor.Id); !alive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the adaptor outlived its TTL")
		}
		time.Sleep(10 * time.Millisecond) // poll the registry
	}
}
