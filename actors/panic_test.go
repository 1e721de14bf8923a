package actors

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// An actor is not its process: a panicking box actor, or root, is restarted
// and adopts the shims again; no shim is touched. injectPanic is the
// package's fault-injection hook (Config.faultInjection).

// TestBoxActorPanicKeepsShim: a box actor that panics is restarted and
// re-adopts its shim; the process is untouched (same pid, still running),
// the other boxes do not notice, and Stop still works.
func TestBoxActorPanicKeepsShim(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	evs := recordEvents(ts)
	victim := ts.startSleeper("victim")
	bystander := ts.startSleeper("bystander")
	shim := procOf(t, victim.PID)

	ts.sup.System().Root.Send(ts.sup.Root(), &injectPanic{id: "victim"})

	adopted := evs.waitFor(t, "victim", "BoxAdopted", 1)[0].(messages.BoxAdopted)
	if adopted.PID != victim.PID {
		t.Errorf("BoxAdopted pid %d, want the same shim pid %d", adopted.PID, victim.PID)
	}
	if !shim.alive() {
		t.Fatalf("shim pid %d died when its box actor panicked", victim.PID)
	}
	st, err := ts.sup.Status(ts.ctx(), "victim")
	if err != nil || st.State != messages.StateRunning || st.PID != victim.PID {
		t.Errorf("Status after the panic: %+v, %v; want running pid %d", st, err, victim.PID)
	}
	if st.Generation <= victim.Generation {
		t.Errorf("generation %d after re-adoption, want > %d (a new incarnation)", st.Generation, victim.Generation)
	}
	if by, err := ts.sup.Status(ts.ctx(), "bystander"); err != nil || by.PID != bystander.PID ||
		by.Generation != bystander.Generation || by.State != messages.StateRunning {
		t.Errorf("bystander changed: %+v (%v), was %+v", by, err, bystander)
	}
	if n := len(evs.of("bystander", "BoxAdopted")); n != 0 {
		t.Errorf("bystander was re-adopted %d times; only the panicking actor restarts", n)
	}

	stopped, err := ts.sup.Stop(ts.ctx(), "victim", 10*time.Second)
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
	t.Parallel()
	ts := newTestSup(t)
	evs := recordEvents(ts)
	ids := []string{"a", "b", "c"}
	before := map[string]messages.BoxStatus{}
	shims := map[string]proc{}
	for _, id := range ids {
		before[id] = ts.startSleeper(id)
		shims[id] = procOf(t, before[id].PID)
	}

	// A request queued right behind the panic must still find its box: the
	// restarted root has to know its boxes before it answers for them. Both
	// go from this goroutine, back to back, so the request is already queued
	// when the root restarts.
	root := ts.sup.System().Root
	root.Send(ts.sup.Root(), &injectPanic{})
	probe := root.RequestFuture(ts.sup.Root(), &messages.StatusRequest{ID: "a"}, testTimeout)
	if v, err := probe.Result(); err != nil {
		t.Errorf("Status(a) queued right behind the root's panic: %v", err)
	} else if st, ok := v.(messages.BoxStatus); !ok || st.Err != nil {
		t.Errorf("Status(a) queued right behind the root's panic: %#v", v)
	}

	for _, id := range ids {
		adopted := evs.waitFor(t, id, "BoxAdopted", 1)[0].(messages.BoxAdopted)
		if adopted.PID != before[id].PID {
			t.Errorf("%s: BoxAdopted pid %d, want %d", id, adopted.PID, before[id].PID)
		}
		if !shims[id].alive() {
			t.Errorf("%s: shim pid %d died when the root panicked", id, before[id].PID)
		}
	}
	eventually(t, "List to show every box running with its old pid", func() bool {
		list, err := ts.sup.List(ts.ctx(), ListOptions{})
		if err != nil || len(list) != len(ids) {
			return false
		}
		for _, st := range list {
			if b, known := before[st.ID]; !known || st.State != messages.StateRunning || st.PID != b.PID {
				return false
			}
		}
		return true
	})
	if n := len(evs.of("a", "BoxStarted")); n != 1 {
		t.Errorf("box a was spawned %d times; a root restart must adopt, not respawn", n)
	}
	for _, id := range ids {
		stopped, err := ts.sup.Stop(ts.ctx(), id, 10*time.Second)
		if err != nil || stopped.State != messages.StateExited {
			t.Errorf("Stop(%s) after the root panic: state %q err %v", id, stopped.State, err)
		}
		if !shims[id].gone() {
			t.Errorf("Stop(%s) answered while its shim still existed", id)
		}
	}
}

// TestInjectPanicIgnoredWithoutFaultInjection: injectPanic is a test hook
// and does nothing unless Config.faultInjection is set.
func TestInjectPanicIgnoredWithoutFaultInjection(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t, func(c *Config) { c.faultInjection = false })
	evs := recordEvents(ts)
	before := ts.startSleeper("calm")
	ts.sup.System().Root.Send(ts.sup.Root(), &injectPanic{id: "calm"})
	ts.sup.System().Root.Send(ts.sup.Root(), &injectPanic{})
	// Requests are handled in order: the Status below is answered after both
	// injections were.
	st, err := ts.sup.Status(ts.ctx(), "calm")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Generation != before.Generation || st.PID != before.PID || st.State != messages.StateRunning {
		t.Errorf("box changed after an ignored injectPanic: %+v, was %+v", st, before)
	}
	if n := len(evs.of("calm", "BoxAdopted")); n != 0 {
		t.Errorf("%d BoxAdopted events: the injection was not ignored", n)
	}
}

// startSleeper starts a box running a long sleep and fails the test unless
// it is running.
func (ts *testSup) startSleeper(id string) messages.BoxStatus {
	ts.t.Helper()
	st, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: id, Spec: spec("/bin/sleep", "300")})
	if err != nil || st.State != messages.StateRunning || st.PID <= 0 {
		ts.t.Fatalf("Start(%s) = %+v, %v; want running with a pid", id, st, err)
	}
	return st
}

// eventRec records a supervisor's events, for tests that wait for some.
type eventRec struct {
	mu  sync.Mutex
	evs []messages.Event
}

// recordEvents subscribes to every event of the test's supervisor.
func recordEvents(ts *testSup) *eventRec {
	r := &eventRec{}
	cancel := ts.sup.Subscribe(EventFilter{}, func(ev messages.Event) {
		r.mu.Lock()
		r.evs = append(r.evs, ev)
		r.mu.Unlock()
	})
	ts.t.Cleanup(cancel)
	return r
}

// of returns the events of one kind about box id so far.
func (r *eventRec) of(id, kind string) []messages.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []messages.Event
	for _, ev := range r.evs {
		if ev.Box() == id && ev.Kind() == kind {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor waits until n events of kind about box id have arrived.
func (r *eventRec) waitFor(t *testing.T, id, kind string, n int) []messages.Event {
	t.Helper()
	var out []messages.Event
	eventually(t, fmt.Sprintf("%d %s event(s) of %s", n, kind, id), func() bool {
		out = r.of(id, kind)
		return len(out) >= n
	})
	return out
}

// proc names one process for its whole life: its pid and start time.
type proc struct {
	pid   int
	start string
}

// procOf identifies a running process, failing the test when it is gone.
func procOf(t *testing.T, pid int) proc {
	t.Helper()
	start, _, err := procStat(pid)
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	return proc{pid, start}
}

// procStat returns the start time (field 22) and state (field 3) of pid.
func procStat(pid int) (start string, state byte, err error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return "", 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f[19], f[0][0], nil
}

// alive reports whether the process exists and has not exited.
func (p proc) alive() bool {
	start, state, err := procStat(p.pid)
	return err == nil && start == p.start && state != 'Z' && state != 'X'
}

// gone reports whether the process has exited and been reaped.
func (p proc) gone() bool {
	start, _, err := procStat(p.pid)
	return err != nil || start != p.start
}
