package lifecycle

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// The files of a live box can be damaged (missing, corrupt, written by
// another user, a link): the box keeps running, is explained, and nothing
// is done on the word of what was damaged.

// errCorrupt is a damaged file as package layout reports it: a typed
// error (an untyped one is a file that could not be read right now).
var errCorrupt = messages.Errorf(messages.ErrCorruptFile, "state.json: invalid character 'g'")

// TestDamagedSpecOfALiveBox: a running box whose spec.json is unusable is
// adopted through its verified shim, says so in every status (Damage and
// Reason) until it is fixed, stays stoppable, is never restarted nor
// started, and an Update (which would rewrite spec.json from nothing) is
// refused.
func TestDamagedSpecOfALiveBox(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	attached := false
	rec := messages.StateRecord{ID: "web", State: messages.StateRunning, Generation: 1, Detached: &attached,
		Identity: messages.Identity{PID: 100, StartTime: 5, BootID: "b"}, Cgroup: "/cg/web/gen-1"}
	d.feed(Loaded{SpecErr: fs.ErrNotExist, Rec: rec, Opts: Options{Detach: true, Restart: messages.RestartPolicy{Mode: messages.RestartAlways}}})
	if o := d.m.Options(); o.Detach {
		t.Fatalf("detach = %v: it must come from state.json when spec.json is unusable", o.Detach)
	}
	d.feed(Adopted{Gen: 2, Outcome: Verified, Proc: Proc{Identity: rec.Identity, Cgroup: rec.Cgroup}})
	d.expectPhase(Running)
	st := d.m.Status(nil)
	if st.State != messages.StateRunning || !strings.Contains(st.Damage, "spec.json unusable") || !strings.Contains(st.Reason, st.Damage) {
		t.Fatalf("status of a running box without spec.json = %+v; want running with the damage explained", st)
	}

	w := d.waiter()
	d.feed(Update{W: w, Set: Settings{Labels: map[string]string{"a": "b"}}})
	if r := d.mustReply(w); !errors.Is(messages.Err(r.Err), messages.ErrBadSpec) || len(find[WriteSpec](d.last)) != 0 {
		t.Fatalf("Update without a usable spec.json = %+v (effects %s); want ErrBadSpec and no write", r, describe(d.last))
	}

	// An exit nobody asked for is not restarted: there is no spec to run.
	d.feed(ProcExited{Gen: 2, Exit: messages.ExitRecord{ExitCode: 1, FinishedAt: d.env.now}})
	d.ackAll()
	d.expectPhase(Exited)
	if st := d.m.Status(nil); st.Damage == "" {
		t.Fatalf("the damage is no longer explained after the exit: %+v", st)
	}
	w = d.waiter()
	d.feed(Start{W: w})
	if r := d.mustReply(w); !errors.Is(messages.Err(r.Err), messages.ErrBadSpec) {
		t.Fatalf("Start without a usable spec.json = %+v; want ErrBadSpec", r)
	}
}

// TestDamagedStateOfALiveBox: a box whose state.json is unusable is looked
// for in its cgroup (no identity from the damaged file), adopted once its
// shim is verified, and the damage is explained in the status and in the
// rewritten record; its detach flag comes from spec.json.
func TestDamagedStateOfALiveBox(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	d.feed(Loaded{RecErr: errCorrupt, Opts: Options{Detach: true}})
	v := find[Verify](d.last)
	if len(v) != 1 || !v[0].Identity.Zero() || v[0].Cgroup != "/cg/web" {
		t.Fatalf("verify of a box with an unusable state.json = %s; want a search of the box's cgroup", describe(d.last))
	}
	d.feed(Adopted{Gen: v[0].Gen, Outcome: Verified, Proc: Proc{Identity: messages.Identity{PID: 77, StartTime: 1, BootID: "b"}, Cgroup: "/cg/web/gen-1"}})
	d.expectPhase(Running)
	p := find[Persist](d.last)
	if len(p) != 1 || p[0].Rec.State != messages.StateRunning || p[0].Rec.Identity.PID != 77 ||
		!p[0].Rec.IsDetached() || !strings.Contains(p[0].Rec.Reason, "state.json unusable") {
		t.Fatalf("the rewritten record = %s; want running, pid 77, detached, the damage in its reason", describe(d.last))
	}
	st := d.m.Status(nil)
	if !strings.Contains(st.Damage, "state.json unusable") || strings.Count(st.Reason, "state.json unusable") != 1 {
		t.Fatalf("status = %+v; want the damage once in the reason and in Damage", st)
	}
	// The next start is a fresh, undamaged run.
	w := d.waiter()
	d.feed(Stop{W: w, Timeout: time.Second})
	d.ackAll()
	d.feed(ProcExited{Gen: v[0].Gen, Exit: messages.ExitRecord{ExitCode: 0, FinishedAt: d.env.now}})
	d.ackAll()
	d.expectPhase(Exited)
	d.feed(Start{W: d.waiter()})
	if st := d.m.Status(nil); st.Damage != "" {
		t.Fatalf("a new start still reports the old damage: %+v", st)
	}
}

// TestBothRecordsMissingNeverStopsTheBox: with neither spec.json nor
// state.json, a box is taken as detached (a supervisor that goes away leaves
// it running) and is not restarted when its shim is found gone.
func TestBothRecordsMissingNeverStopsTheBox(t *testing.T) {
	t.Parallel()
	d := newDriver(t, false)
	d.feed(Loaded{RecErr: fs.ErrNotExist, SpecErr: fs.ErrNotExist})
	if !d.m.Options().Detach {
		t.Fatal("a box with no records is taken as attached: a supervisor's exit would stop it")
	}
	d.feed(Adopted{Gen: 1, Outcome: Verified, Proc: Proc{Identity: messages.Identity{PID: 9, StartTime: 1, BootID: "b"}, Cgroup: "/cg/web/gen-1"}})
	d.expectPhase(Running)
	st := d.m.Status(nil)
	if !strings.Contains(st.Damage, "no state record") || !strings.Contains(st.Damage, "spec.json unusable") {
		t.Fatalf("status = %+v; want both files' damage explained", st)
	}
}
