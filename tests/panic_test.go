package tests

import (
	"fmt"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// TestBoxActorPanicKeepsShim: a box actor that panics is restarted and
// re-adopts its shim; the process is untouched (same pid, still running),
// the other boxes do not notice, and Stop still works.
func TestBoxActorPanicKeepsShim(t *testing.T) {
	h := newHarness(t)
	victim := h.startSleeper("victim")
	bystander := h.startSleeper("bystander")
	shim := h.procs.track(victim.PID, "shim of victim")

	h.sup.System().Root.Send(h.sup.Root(), &actors.InjectPanic{ID: "victim"})

	adopted := waitForEvent[messages.BoxAdopted](t, h.events, "victim", 1)[0]
	if adopted.PID != victim.PID {
		t.Errorf("BoxAdopted pid %d, want the same shim pid %d", adopted.PID, victim.PID)
	}
	if !shim.alive() {
		t.Fatalf("shim pid %d died when its box actor panicked", victim.PID)
	}
	st := h.status("victim")
	if st.State != messages.StateRunning || st.PID != victim.PID {
		t.Errorf("Status after the panic: state %q pid %d, want running pid %d", st.State, st.PID, victim.PID)
	}
	if st.Generation <= victim.Generation {
		t.Errorf("generation %d after re-adoption, want > %d (a new incarnation)", st.Generation, victim.Generation)
	}
	if by := h.status("bystander"); by.PID != bystander.PID || by.Generation != bystander.Generation || by.State != messages.StateRunning {
		t.Errorf("bystander changed: %+v, was %+v", by, bystander)
	}
	if n := len(eventsOf[messages.BoxAdopted](h.events.all(), "bystander")); n != 0 {
		t.Errorf("bystander was re-adopted %d times; only the panicking actor restarts", n)
	}

	stopped, err := h.sup.Stop(h.ctx(), "victim", 10*time.Second)
	gone := shim.gone()
	if err != nil {
		t.Fatalf("Stop after the panic: %v", err)
	}
	if stopped.State != messages.StateExited || stopped.LastExit == nil {
		t.Errorf("Stop reply: state %q LastExit %+v, want exited with an exit record", stopped.State, stopped.LastExit)
	}
	if !gone {
		t.Errorf("Stop answered while shim pid %d still existed (alive or unreaped)", victim.PID)
	}
}

// TestRootPanicReadoptsAllBoxes: when the root supervisor panics, it is
// restarted, its box actors are re-created and every shim is re-adopted by
// pid; nothing is respawned, and the facade keeps answering for every box.
func TestRootPanicReadoptsAllBoxes(t *testing.T) {
	h := newHarness(t)
	ids := []string{"a", "b", "c"}
	before := map[string]messages.BoxStatus{}
	shims := map[string]procID{}
	for _, id := range ids {
		before[id] = h.startSleeper(id)
		shims[id] = h.procs.track(before[id].PID, "shim of "+id)
	}

	// A request queued right behind the panic must still find its box: the
	// restarted root has to know its boxes before it answers for them. Both
	// go from this goroutine, back to back, so the request is already queued
	// when the root restarts.
	root := h.sup.System().Root
	root.Send(h.sup.Root(), &actors.InjectPanic{ID: ""})
	probe := root.RequestFuture(h.sup.Root(), &messages.StatusRequest{ID: "a"}, waitTimeout)
	if st, err := replyStatus(probe.Result()); err != nil {
		t.Errorf("Status(a) queued right behind the root's panic: %v (state %q)", err, st.State)
	}

	for _, id := range ids {
		adopted := waitForEvent[messages.BoxAdopted](t, h.events, id, 1)[0]
		if adopted.PID != before[id].PID {
			t.Errorf("%s: BoxAdopted pid %d, want %d", id, adopted.PID, before[id].PID)
		}
		if !shims[id].alive() {
			t.Errorf("%s: shim pid %d died when the root panicked", id, before[id].PID)
		}
	}
	eventually(t, "List to show every box running with its old pid", func() (bool, string) {
		list, err := h.sup.List(h.ctx())
		if err != nil {
			return false, err.Error()
		}
		ok := len(list) == len(ids)
		saw := ""
		for _, st := range list {
			saw += fmt.Sprintf("%s:%s:%d ", st.ID, st.State, st.PID)
			if b, known := before[st.ID]; !known || st.State != messages.StateRunning || st.PID != b.PID {
				ok = false
			}
		}
		return ok, saw
	})
	if n := len(eventsOf[messages.BoxStarted](h.events.all(), "a")); n != 1 {
		t.Errorf("box a was spawned %d times; a root restart must adopt, not respawn", n)
	}
	for _, id := range ids {
		stopped, err := h.sup.Stop(h.ctx(), id, 10*time.Second)
		if err != nil || stopped.State != messages.StateExited {
			t.Errorf("Stop(%s) after the root panic: state %q err %v", id, stopped.State, err)
		}
		if !shims[id].gone() {
			t.Errorf("Stop(%s) answered while its shim still existed", id)
		}
	}
}

// TestInjectPanicIgnoredWithoutFaultInjection: InjectPanic is a test hook
// and does nothing unless Config.FaultInjection is set.
func TestInjectPanicIgnoredWithoutFaultInjection(t *testing.T) {
	h := newHarness(t, withConfig(func(c *actors.Config) { c.FaultInjection = false }))
	before := h.startSleeper("calm")
	h.sup.System().Root.Send(h.sup.Root(), &actors.InjectPanic{ID: "calm"})
	h.sup.System().Root.Send(h.sup.Root(), &actors.InjectPanic{ID: ""})
	// Requests are handled in order: the Status below is answered after both
	// injections were.
	st, err := h.sup.Status(h.ctx(), "calm")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Generation != before.Generation || st.PID != before.PID || st.State != messages.StateRunning {
		t.Errorf("box changed after an ignored InjectPanic: %+v, was %+v", st, before)
	}
	if n := len(eventsOf[messages.BoxAdopted](h.events.all(), "calm")); n != 0 {
		t.Errorf("%d BoxAdopted events: the injection was not ignored", n)
	}
}
