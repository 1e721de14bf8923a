package remoting

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/mtls"
	"github.com/boxsup/boxsup/cluster/wire"
	"github.com/boxsup/boxsup/messages"
)

func ask(t *testing.T, pm *parentMember, addr string, msg any) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return Request(ctx, pm.system, RootOf(addr), msg, requestTimeout)
}

// TestRootsReachEachOtherOverMutualTLS is the spike: two processes reach
// each other's root supervisor through protoactor remote over mTLS, with
// boxsup's messages in wire envelopes and a secret intact.
func TestRootsReachEachOtherOverMutualTLS(t *testing.T) {
	t.Parallel()
	pm := parent(t)
	files := pm.pki.issue(t, false)
	member := startChild(t, "member", &files, pm.endpoint.Address())

	reply, err := ask(t, pm, member.addr, &messages.StatusRequest{ID: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := reply.(*messages.BoxStatus); !ok || st.ID != "web" || st.State != messages.StateRunning {
		t.Fatalf("reply %#v", reply)
	}
	// StartBox makes the child ask this process's root in turn.
	reply, err = ask(t, pm, member.addr, &messages.StartBox{ID: "db", Spec: messages.InstanceSpec{
		Secrets: []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret("s3cret")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if st := reply.(*messages.BoxStatus); st.Reason != "s3cret|running" {
		t.Fatalf("want the secret intact and the child to have reached this root: %q", st.Reason)
	}

	// A refusal crosses as an error that still matches its sentinel.
	if _, err := ask(t, pm, member.addr, &messages.Remove{ID: "db"}); !errors.Is(err, messages.ErrBusy) {
		t.Fatalf("refusal: %v", err)
	}

	// A type the receiver does not know is answered with an error.
	box := &inbox{ch: make(chan any, 1)}
	self, _ := pm.system.ProcessRegistry.Add(box, "raw-reply-"+pm.system.ProcessRegistry.NextId())
	defer pm.system.ProcessRegistry.Remove(self)
	pm.system.Root.RequestWithCustomSender(RootOf(member.addr),
		&wire.Envelope{Type: "LaunchMissiles", Version: wire.Version, Payload: []byte("{}")}, self)
	select {
	case v := <-box.ch:
		out, err := wire.Decode(v.(*wire.Envelope))
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := out.(*messages.Error); !ok || !errors.Is(e, messages.ErrBadSpec) || !strings.Contains(e.Msg, "unknown message type") {
			t.Fatalf("reply to an unknown type: %#v", out)
		}
	case <-time.After(requestTimeout):
		t.Fatal("no reply to an unknown type")
	}
}

// TestPeerFromAnotherCAIsRefused: a process with a certificate from another
// CA gets no answer and learns of the refusal as an endpoint loss.
func TestPeerFromAnotherCAIsRefused(t *testing.T) {
	t.Parallel()
	pm := parent(t)
	files := pm.pki.issue(t, true)
	intruder := startChild(t, "ask", &files, pm.endpoint.Address())
	line := intruder.expect(t, "LOST ", "REPLY ")
	if line != "LOST "+pm.endpoint.Address() {
		t.Fatalf("intruder: %s", line)
	}
}

// TestPlainTextPeerIsRefusedByATLSMember, and two insecure peers talk.
func TestInsecureTransportOnlyBetweenInsecurePeers(t *testing.T) {
	t.Parallel()
	pm := parent(t)
	plain := startChild(t, "ask", nil, pm.endpoint.Address())
	if line := plain.expect(t, "LOST ", "REPLY "); line != "LOST "+pm.endpoint.Address() {
		t.Fatalf("plain-text asker: %s", line)
	}
	member := startChild(t, "member", nil, "")
	asker := startChild(t, "ask", nil, member.addr)
	if line := asker.expect(t, "LOST ", "REPLY "); line != "REPLY asked running " {
		t.Fatalf("insecure asker: %q", line)
	}
}

// TestMemberLossIsAnEvent: a member process dies (SIGKILL); this member
// learns it as an endpoint loss, and a watcher of the dead member's root as
// Terminated{AddressTerminated}. Both mean "unknown" to boxsup, not "dead".
func TestMemberLossIsAnEvent(t *testing.T) {
	t.Parallel()
	pm := parent(t)
	files := pm.pki.issue(t, false)
	member := startChild(t, "member", &files, "")
	losses := pm.losses(t)
	if _, err := ask(t, pm, member.addr, &messages.StatusRequest{ID: "web"}); err != nil {
		t.Fatal(err)
	}
	terminated := make(chan *actor.Terminated, 1)
	watcher := pm.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(RootOf(member.addr))
		case *actor.Terminated:
			terminated <- m
		}
	}))
	defer pm.system.Root.Stop(watcher)

	if err := member.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(requestTimeout)
	for got := ""; got != member.addr; {
		select {
		case got = <-losses:
		case <-deadline:
			t.Fatal("no endpoint loss reported")
		}
	}
	select {
	case m := <-terminated:
		if m.Why != actor.TerminatedReason_AddressTerminated || m.Who.GetAddress() != member.addr {
			t.Fatalf("terminated %v", m)
		}
	case <-deadline:
		t.Fatal("the watcher was not told")
	}
}

func TestStartRefusesWithoutTransportSecurityOrABadAddress(t *testing.T) {
	t.Parallel()
	system := quietSystem()
	defer system.Shutdown()
	if _, err := Start(system, Config{Listen: "127.0.0.1:0"}); !errors.Is(err, mtls.ErrNoTransportSecurity) {
		t.Fatalf("no transport choice: %v", err)
	}
	if _, err := Start(system, Config{Listen: "nonsense", Transport: mtls.Transport{Insecure: true}}); err == nil {
		t.Fatal("accepted a listen address without a port")
	}
}
