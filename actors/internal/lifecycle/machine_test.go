package lifecycle

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestTableIsComplete: every (phase, event kind) pair is decided by exactly
// one row of the table (a duplicate panics at init).
func TestTableIsComplete(t *testing.T) {
	t.Parallel()
	for _, p := range AllPhases() {
		for _, k := range AllKinds() {
			if index[p][k] == nil {
				t.Errorf("no row decides %s in %s", k, p)
			}
		}
	}
}

func TestReadyThenExitStartsAndJudgesTheExit(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 1}})
	d.expectPhase(Exited) // restart policy "no"
}

// TestExitBeforeReadyIsAStartedBox: the shim wrote its ready byte and
// exited; the exit message overtook the ready result. The box started, and
// the exit is a normal exit judged by the restart policy (issue: exit
// racing ready reported "shim exited before ready").
func TestExitBeforeReadyIsAStartedBox(t *testing.T) {
	t.Parallel()
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{Restart: messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 3}}})
	d.feed(Prepared{}, SpecDurable{})
	d.ackAll()
	d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100}}})
	d.ackAll()
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 1}})
	d.expectPhase(AwaitReady)
	d.feed(Ready{Gen: 1})
	d.expectPhase(Restarting)
	d.ackAll()
	st := d.mustReply(w)
	if st.Err != nil || st.State != messages.StateRunning {
		t.Fatalf("start reply = %+v, want running without error", st)
	}
	want := []string{"BoxStarted", "BoxReady", "BoxExited", "BoxRestarting"}
	if got := d.published(); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

// TestReadyTimeoutIsReadyTimeout: the timeout's own kill reaches the actor
// before the ready result; the caller still gets ErrReadyTimeout.
func TestReadyTimeoutIsReadyTimeout(t *testing.T) {
	t.Parallel()
	for _, exitFirst := range []bool{true, false} {
		d := newDriver(t, true)
		w := d.waiter()
		d.feed(Create{W: w, Opts: Options{}}, Prepared{}, SpecDurable{})
		d.ackAll()
		d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100}}})
		d.ackAll()
		killed := messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL"}
		timeout := messages.Errorf(messages.ErrReadyTimeout, "no ready signal within 200ms")
		if exitFirst {
			d.feed(ProcExited{Gen: 1, Exit: killed}, Ready{Gen: 1, Err: timeout})
		} else {
			d.feed(Ready{Gen: 1, Err: timeout, Exit: &killed})
		}
		d.expectPhase(Failed)
		d.ackAll()
		st := d.mustReply(w)
		if !errors.Is(messages.Err(st.Err), messages.ErrReadyTimeout) {
			t.Fatalf("exitFirst=%v: start reply error = %v, want ErrReadyTimeout", exitFirst, st.Err)
		}
		if st.LastExit == nil || st.LastExit.Signal != "SIGKILL" {
			t.Fatalf("last exit = %+v", st.LastExit)
		}
	}
}

// TestKillTimerAfterExitIsIgnored: a cancelled kill timer that was already
// queued arrives after the exit, and after a new generation started.
func TestKillTimerAfterExitIsIgnored(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	stop := d.waiter()
	d.feed(Stop{W: stop, Timeout: time.Second})
	d.expectPhase(Stopping)
	if len(find[SendSignal](d.last)) != 1 || len(find[Arm](d.last)) != 1 {
		t.Fatalf("stop effects: %s", describe(d.last))
	}
	d.ackAll()
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{Signal: "SIGTERM"}})
	d.expectPhase(Exited)
	d.ackAll()
	if st := d.mustReply(stop); st.Err != nil || st.Killed {
		t.Fatalf("stop reply = %+v", st)
	}
	start := d.waiter()
	d.feed(Start{W: start})
	d.ackAll()
	d.feed(KillTimer{Gen: 1})
	d.expectPhase(Spawning)
	if len(find[KillTree](d.last)) != 0 {
		t.Fatal("a stale kill timer killed the new generation")
	}
}

// TestReplyWaitsForTheWrite: a stop is answered only once exited is on
// disk; a write that fails is answered with ErrPersist beside the status.
func TestReplyWaitsForTheWrite(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	stop := d.waiter()
	d.feed(Stop{W: stop})
	d.ackAll()
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 0}})
	if _, ok := d.replyTo(stop); ok {
		t.Fatal("stop answered before exited was written")
	}
	p := find[Persist](d.last)
	d.feed(Persisted{Seq: p[0].Seq, Err: syscall.ENOSPC})
	st := d.mustReply(stop)
	if st.State != messages.StateExited || !errors.Is(messages.Err(st.Err), messages.ErrPersist) {
		t.Fatalf("stop reply = %+v, want exited with ErrPersist", st)
	}
}

// TestUnverifiedBoxIsNeverRestartedAndKillableThroughItsCgroup.
func TestUnverifiedBoxIsNeverRestartedAndKillableThroughItsCgroup(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	rec := messages.StateRecord{ID: "web", State: messages.StateRunning, Generation: 3,
		Identity: messages.Identity{PID: 100, StartTime: 1, BootID: "b"}, Cgroup: "/cg/web/gen-3"}
	d.feed(Loaded{Opts: Options{Restart: messages.RestartPolicy{Mode: messages.RestartAlways}}, Rec: rec})
	d.expectPhase(Adopting)
	d.feed(Adopted{Gen: 4, Outcome: Unverified, Err: syscall.EMFILE})
	d.expectPhase(Unknown)
	if len(find[Persist](d.last)) != 0 {
		t.Fatal("an unverified box rewrote its record")
	}
	if st := d.m.Status(nil); st.State != messages.StateUnknown || st.PID != 100 {
		t.Fatalf("status = %+v, want unknown keeping pid 100", st)
	}
	d.feed(RetryTimer{Gen: 4})
	d.expectPhase(Adopting)
	d.feed(Adopted{Gen: 5, Outcome: Unverified, Err: syscall.EMFILE})
	stop := d.waiter()
	d.feed(Stop{W: stop})
	d.expectPhase(Killing)
	kc := find[KillCgroup](d.last)
	if len(kc) != 1 || kc[0].Cgroup != "/cg/web/gen-3" {
		t.Fatalf("kill effects: %s", describe(d.last))
	}
	d.ackAll()
	d.feed(ProcExited{Gen: 5, Exit: messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL", Reason: "killed while unverified"}})
	d.expectPhase(Exited)
	d.ackAll()
	if st := d.mustReply(stop); st.Err != nil || st.State != messages.StateExited {
		t.Fatalf("stop reply = %+v", st)
	}
	if len(find[Spawn](d.out)) != 0 {
		t.Fatal("an unverified box was spawned again")
	}
}

// TestUnverifiedWithoutCgroupRefusesToSignal.
func TestUnverifiedWithoutCgroupRefusesToSignal(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	d.env.noCgroup = true
	rec := messages.StateRecord{ID: "web", State: messages.StateRunning, Generation: 1, Identity: messages.Identity{PID: 100}}
	d.feed(Loaded{Opts: Options{}, Rec: rec})
	d.feed(Adopted{Gen: 2, Outcome: Unverified, Err: syscall.ENOMEM})
	w := d.waiter()
	d.feed(Remove{W: w, Force: true})
	st := d.mustReply(w)
	if !errors.Is(messages.Err(st.Err), messages.ErrUnverified) {
		t.Fatalf("rm -f reply = %+v, want ErrUnverified", st)
	}
	if len(find[RemoveDir](d.out)) != 0 || len(find[KillCgroup](d.out)) != 0 {
		t.Fatal("an unverified box without a cgroup was killed or removed")
	}
}

// TestInterruptedStartIsAdopted: a supervisor died between writing the
// intent and the identity; the new one finds the shim and adopts it.
func TestInterruptedStartIsAdopted(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	rec := messages.StateRecord{ID: "web", State: messages.StateStarting, Generation: 1, Cgroup: "/cg/web/gen-1", SpawnToken: "tok"}
	d.feed(Loaded{Opts: Options{Restart: messages.RestartPolicy{Mode: messages.RestartAlways}}, Rec: rec})
	v := find[Verify](d.last)
	if len(v) != 1 || !v[0].Identity.Zero() || v[0].Cgroup != "/cg/web/gen-1" || v[0].Token != "tok" {
		t.Fatalf("verify = %s", describe(d.last))
	}
	d.feed(Adopted{Gen: 2, Outcome: Verified, Proc: Proc{Identity: messages.Identity{PID: 77}, Cgroup: "/cg/web/gen-1"}})
	d.expectPhase(Running)
	if p := find[Persist](d.last); len(p) != 1 || p[0].Rec.State != messages.StateRunning || p[0].Rec.Identity.PID != 77 {
		t.Fatalf("adoption did not record the shim: %s", describe(d.last))
	}
}

// TestInterruptedStartWithNothingFoundIsJudged.
func TestInterruptedStartWithNothingFoundIsJudged(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	rec := messages.StateRecord{ID: "web", State: messages.StateStarting, Generation: 1, Cgroup: "/cg/web/gen-1", SpawnToken: "tok"}
	d.feed(Loaded{Opts: Options{Startable: true, Restart: messages.RestartPolicy{Mode: messages.RestartAlways}}, Rec: rec})
	d.feed(Adopted{Gen: 2, Outcome: Vanished})
	d.expectPhase(Restarting)
	d.ackAll()
	d.feed(RestartTimer{Gen: 2})
	d.expectPhase(Intent)
}

// TestCancelledStartIsUndone follows os/exec's CommandContext: the box is
// killed and, being new, removed before the caller is answered.
func TestCancelledStartIsUndone(t *testing.T) {
	t.Parallel()
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{}}, Prepared{}, SpecDurable{})
	d.ackAll()
	d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100}}})
	d.ackAll()
	d.feed(CancelStart{W: w})
	d.expectPhase(Killing)
	if len(find[KillTree](d.last)) != 1 {
		t.Fatalf("cancel effects: %s", describe(d.last))
	}
	if _, ok := d.replyTo(w); ok {
		t.Fatal("answered before the start was undone")
	}
	d.ackAll()
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL"}})
	d.ackAll()
	d.expectPhase(Removing)
	d.feed(Removed{})
	d.expectPhase(Gone)
	end := find[End](d.last)
	if len(end) != 1 || len(end[0].Replies) != 1 || end[0].Replies[0].W != w ||
		!errors.Is(messages.Err(end[0].Replies[0].Status.Err), messages.ErrStartFailed) {
		t.Fatalf("end = %s", describe(d.last))
	}
}

// TestCancelBeforeSpawnSpawnsNothing.
func TestCancelBeforeSpawnSpawnsNothing(t *testing.T) {
	t.Parallel()
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{}}, Prepared{}, SpecDurable{})
	d.expectPhase(Intent)
	intent := d.last
	d.feed(CancelStart{W: w})
	d.expectPhase(Removing)
	d.last = intent
	d.ackAll()
	if len(find[Spawn](d.out)) != 0 {
		t.Fatal("spawned after the start was cancelled")
	}
}

// TestStopDuringSpawnIsDeferred: the request waits for the fork's result
// and then stops the new shim.
func TestStopDuringSpawnIsDeferred(t *testing.T) {
	t.Parallel()
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{}}, Prepared{}, SpecDurable{})
	d.ackAll()
	stop := d.waiter()
	d.feed(Stop{W: stop})
	d.expectPhase(Spawning)
	d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100}}})
	d.expectPhase(Stopping)
	if st := d.mustReply(w); !errors.Is(messages.Err(st.Err), messages.ErrStartFailed) {
		t.Fatalf("start reply = %+v", st)
	}
}

// TestRemoveForceStopsThenRemoves.
func TestRemoveForceStopsThenRemoves(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	w := d.waiter()
	d.feed(Remove{W: w})
	if st := d.mustReply(w); !errors.Is(messages.Err(st.Err), messages.ErrBusy) {
		t.Fatalf("rm without force = %+v", st)
	}
	w2 := d.waiter()
	d.feed(Remove{W: w2, Force: true})
	d.expectPhase(Stopping)
	d.ackAll()
	d.feed(ProcExited{Gen: 1})
	d.expectPhase(Removing)
	if len(find[RemoveDir](d.last)) != 0 {
		t.Fatal("removal began while exited was being written")
	}
	d.ackAll()
	if len(find[RemoveDir](d.last)) != 1 {
		t.Fatalf("no removal after the write: %s", describe(d.last))
	}
	d.feed(Removed{})
	d.expectPhase(Gone)
}

// TestRestartPolicyAndLimit: on-failure with 3 restarts allowed fails after
// the third restart with "restart limit exceeded".
func TestRestartPolicyAndLimit(t *testing.T) {
	t.Parallel()
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{Restart: messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 3, InitialBackoff: -1}}})
	d.feed(Prepared{}, SpecDurable{})
	for gen := uint64(1); ; gen++ {
		d.ackAll()
		d.feed(Spawned{Gen: gen, Proc: Proc{Identity: messages.Identity{PID: int(100 + gen)}}})
		d.ackAll()
		d.feed(Ready{Gen: gen}, ProcExited{Gen: gen, Exit: messages.ExitRecord{ExitCode: 1}})
		if d.m.Phase() == Failed {
			if gen != 4 {
				t.Fatalf("failed after generation %d, want 4", gen)
			}
			break
		}
		d.expectPhase(Restarting)
		d.ackAll()
		d.feed(RestartTimer{Gen: gen})
	}
	if st := d.m.Status(nil); st.Restarts != 3 || st.Reason == "" {
		t.Fatalf("status = %+v", st)
	}
}

// TestEventsCarryTheHomeAndTheTimeOfTheTransition.
func TestEventsCarryTheHomeAndTheTimeOfTheTransition(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	stop := d.waiter()
	d.feed(Stop{W: stop})
	d.ackAll()
	at := d.env.now.Add(time.Second)
	d.env.now = at
	d.feed(ProcExited{Gen: 1})
	d.env.now = at.Add(time.Minute) // the write is slow
	d.ackAll()
	ev := find[Publish](d.last)
	if len(ev) != 1 {
		t.Fatalf("published: %s", describe(d.last))
	}
	h := ev[0].Event.Header()
	if h.Home != "/home" || !h.At.Equal(at) {
		t.Fatalf("header = %+v, want home /home at %v", h, at)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRootHearsBeforeTheCaller: the Notify that tells the root about a new
// status comes before the reply that tells a caller, so a caller who at once
// asks the root (Shutdown's stop-all) finds the box as it was answered.
func TestRootHearsBeforeTheCaller(t *testing.T) {
	t.Parallel()
	d := newDriver(t, true)
	w := d.waiter()
	d.feed(Create{W: w, Opts: Options{}}, Prepared{}, SpecDurable{})
	d.ackAll()
	d.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 100}}})
	d.ackAll()
	d.feed(Ready{Gen: 1})
	effs := d.ackAll()
	notify, reply := -1, -1
	for i, e := range effs {
		switch e.(type) {
		case Notify:
			notify = i
		case Reply:
			reply = i
		}
	}
	if notify < 0 || reply < 0 || notify > reply {
		t.Fatalf("Notify at %d, Reply at %d: the root must hear first (%s)", notify, reply, describe(effs))
	}
}
