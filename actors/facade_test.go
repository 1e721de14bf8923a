package actors

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// TestWaitNeverMissesAnExit: registered before the box exists, after it
// started, and after it came to rest, Wait delivers how it came to rest;
// a box its restart policy restarts is not at rest until the policy gives
// up.
func TestWaitNeverMissesAnExit(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	before, err := ts.sup.Wait(ts.ctx(), "quick")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "quick", Spec: spec("/bin/sh", "-c", "exit 3"),
		Restart: messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 2, InitialBackoff: -1}}); err != nil {
		t.Fatal(err)
	}
	after, err := ts.sup.Wait(ts.ctx(), "quick")
	if err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan messages.BoxExit{"before": before, "after": after} {
		ex, ok := <-ch
		if !ok || ex.State != messages.StateFailed || ex.ID != "quick" {
			t.Fatalf("%s: %+v (%v), want the failure after the restart limit", name, ex, ok)
		}
	}
	atRest, err := ts.sup.Wait(ts.ctx(), "quick")
	if err != nil {
		t.Fatal(err)
	}
	if ex := <-atRest; ex.State != messages.StateFailed || ex.Exit == nil || ex.Exit.ExitCode != 3 {
		t.Fatalf("Wait on a box at rest: %+v, want failed with exit 3", ex)
	}
	ctx, cancel := context.WithCancel(context.Background())
	never, _ := ts.sup.Wait(ctx, "nobody")
	cancel()
	if _, ok := <-never; ok {
		t.Fatal("Wait delivered an exit after its context ended")
	}
}

// TestLabelsListAndUpdate: labels are set at Start, carried on statuses and
// events, selected by List and Subscribe, and replaced by Update, which
// also changes the restart policy and stop timeout in place, durably.
func TestLabelsListAndUpdate(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	web, _ := labels.Parse("app=web")
	seen := make(chan messages.Event, 16)
	cancel := ts.sup.Subscribe(EventFilter{Labels: web, Kinds: []string{"BoxReady"}}, func(ev messages.Event) { seen <- ev })
	defer cancel()
	for id, set := range map[string]map[string]string{
		"front": {"app": "web", "tier": "front"},
		"back":  {"app": "web", "tier": "db"},
		"other": {"app": "batch"},
	} {
		if _, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: id, Spec: spec("/bin/sleep", "300"), Labels: set}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ts.sup.List(ts.ctx(), ListOptions{Labels: "app=web,tier!=db"})
	if err != nil || len(got) != 1 || got[0].ID != "front" || got[0].Labels["tier"] != "front" {
		t.Fatalf("List(app=web,tier!=db) = %+v, %v", got, err)
	}
	if _, err := ts.sup.List(ts.ctx(), ListOptions{Labels: "app in ("}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("a bad selector: %v", err)
	}
	if got, _ := ts.sup.List(ts.ctx(), ListOptions{States: []messages.BoxState{messages.StateExited}}); len(got) != 0 {
		t.Fatalf("List(exited) = %+v", got)
	}
	for range 2 {
		select {
		case ev := <-seen:
			if ev.Header().Labels["app"] != "web" {
				t.Fatalf("event of %s slipped through the selector: %+v", ev.Box(), ev)
			}
		case <-time.After(testTimeout):
			t.Fatal("no BoxReady of the web boxes")
		}
	}

	restart := messages.RestartPolicy{Mode: messages.RestartAlways}
	stop := 3 * time.Second
	st, err := ts.sup.Update(ts.ctx(), messages.UpdateBox{ID: "back", Restart: &restart, StopTimeout: &stop, Labels: map[string]string{"app": "web", "tier": "cache"}})
	if err != nil || st.Restart.Mode != messages.RestartAlways || st.StopTimeout != stop || st.Labels["tier"] != "cache" {
		t.Fatalf("Update = %+v, %v", st, err)
	}
	box, _ := ts.sup.core.home.Box("back")
	stored, err := box.ReadSpec()
	if err != nil || stored.Restart.Mode != messages.RestartAlways || stored.StopTimeout != stop ||
		!reflect.DeepEqual(stored.Labels, map[string]string{"app": "web", "tier": "cache"}) {
		t.Fatalf("spec.json after Update: %+v, %v", stored, err)
	}
	if rec, err := box.ReadState(); err != nil || rec.Labels["tier"] != "cache" {
		t.Fatalf("state.json after Update: %+v, %v", rec, err)
	}
	// The root's List knows the new labels as soon as the update returned.
	if got, err := ts.sup.List(ts.ctx(), ListOptions{Labels: "tier=cache"}); err != nil || len(got) != 1 || got[0].ID != "back" || got[0].StopTimeout != stop {
		t.Fatalf("List(tier=cache) after Update = %+v, %v", got, err)
	}
	if now, _ := ts.sup.Status(ts.ctx(), "back"); now.PID != st.PID || now.State != messages.StateRunning {
		t.Fatalf("Update touched the process: %+v", now)
	}
	if _, err := ts.sup.Update(ts.ctx(), messages.UpdateBox{ID: "back", Labels: map[string]string{"bad key!": "x"}}); !errors.Is(err, messages.ErrBadSpec) {
		t.Fatalf("Update with a bad label: %v", err)
	}
	if _, err := ts.sup.Update(ts.ctx(), messages.UpdateBox{ID: "nobody"}); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("Update of an unknown box: %v", err)
	}
}

// TestDetachIsASupervisionOption: StartBox.Detach decides whether a box
// outlives Shutdown(LeaveRunning), and fills the spec's field.
func TestDetachIsASupervisionOption(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	st, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "kept", Spec: spec("/bin/sleep", "300"), Detach: true})
	if err != nil || !st.Detached {
		t.Fatalf("Start(Detach) = %+v, %v", st, err)
	}
	box, _ := ts.sup.core.home.Box("kept")
	if stored, err := box.ReadSpec(); err != nil || !stored.Spec.Detach || !stored.Detach {
		t.Fatalf("spec.json: %+v, %v", stored, err)
	}
}

// TestKilledSurvivesAReopen: a stop that had to SIGKILL says so, with its
// exit, after the home is opened by another supervisor (issue: Killed was
// true right after the stop and false after a reopen).
func TestKilledSurvivesAReopen(t *testing.T) {
	t.Parallel()
	first := newTestSup(t)
	trap := spec("/bin/sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 1; done")
	if _, err := first.sup.Start(first.ctx(), messages.StartBox{ID: "stubborn", Spec: trap}); err != nil {
		t.Fatal(err)
	}
	box, _ := first.sup.core.home.Box("stubborn")
	eventually(t, "the guest's trap to be installed", func() bool { return consoleLines(box) > 0 })
	stopped, err := first.sup.Stop(first.ctx(), "stubborn", 50*time.Millisecond)
	if err != nil || !stopped.Killed || stopped.LastExit == nil {
		t.Fatalf("Stop = %+v, %v; want killed after the timeout", stopped, err)
	}
	if err := first.sup.Shutdown(first.ctx(), LeaveRunning); err != nil {
		t.Fatal(err)
	}
	second := newTestSup(t, func(c *Config) { c.Home = first.sup.Home() })
	st, err := second.sup.Status(second.ctx(), "stubborn")
	if err != nil || st.State != messages.StateExited || !st.Killed || st.LastExit == nil ||
		st.LastExit.Signal != stopped.LastExit.Signal || st.LastExit.ShellCode() != stopped.LastExit.ShellCode() {
		t.Fatalf("after a reopen Status = %+v, %v; want the killed stop of %+v", st, err, stopped)
	}
}
