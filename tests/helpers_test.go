package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// Generous bounds: the tests wait on conditions, never on the clock, and
// these only decide when a condition is declared never to come.
const (
	waitTimeout     = 30 * time.Second
	replyTimeout    = 20 * time.Second // for a reply that should come in milliseconds
	callTimeout     = 60 * time.Second
	shutdownTimeout = 60 * time.Second
	pollInterval    = 5 * time.Millisecond
)

// markerEnv is put in every guest's environment with the test's home as its
// value, so that assertNoLeftovers can find a guest (and anything it forked)
// by scanning /proc/*/environ.
const markerEnv = "BOXSUP_TEST_HOME"

// harness is one test's supervisor with its home, its event log and the
// processes it has seen.
type harness struct {
	t      *testing.T
	home   string
	sup    *actors.Supervisor
	events *eventLog
	procs  *procTracker
}

// harnessOption adjusts a harness before its supervisor starts.
type harnessOption func(*harnessSetup)

type harnessSetup struct {
	cfg       actors.Config
	ownSystem bool
}

// withConfig edits the supervisor's Config.
func withConfig(edit func(*actors.Config)) harnessOption {
	return func(s *harnessSetup) { edit(&s.cfg) }
}

// withOwnSystem runs the supervisor in an actor system the test creates, so
// that events published while NewSupervisor reconciles the home (BoxAdopted
// at boot) are seen: Subscribe only exists once NewSupervisor has returned.
func withOwnSystem() harnessOption {
	return func(s *harnessSetup) { s.ownSystem = true }
}

// newHarness gives the test a fresh home and a Supervisor on it. Cleanup, in
// this order: Shutdown(StopAll), assertNoLeftovers, the supervisor log (on
// failure), home removal, and a check that the test left no goroutine behind.
func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	checkGoroutines(t)
	home := t.TempDir()
	return startHarness(t, home, opts...)
}

// startHarness starts a supervisor on an existing home (the adoption test
// prepares the home with another process first).
func startHarness(t *testing.T, home string, opts ...harnessOption) *harness {
	t.Helper()
	log := testLogger(t) // registered first: the dump comes after the leftover check
	h := &harness{t: t, home: home, events: &eventLog{}, procs: trackerFor(t, home)}
	setup := harnessSetup{cfg: actors.Config{
		Home:       home,
		ShimBinary: shimBinary,
		Logger:     log,
	}}
	for _, o := range opts {
		o(&setup)
	}
	observe := func(ev messages.Event) {
		h.procs.observe(ev)
		h.events.add(ev)
	}
	var sys *actor.ActorSystem
	if setup.ownSystem {
		sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.NewTextHandler(io.Discard, nil))
		}))
		sub := sys.EventStream.Subscribe(func(evt any) {
			if ev, ok := evt.(messages.Event); ok {
				observe(ev)
			}
		})
		setup.cfg.System = sys
		t.Cleanup(func() {
			sys.EventStream.Unsubscribe(sub)
			sys.Shutdown()
		})
	}
	sup, err := actors.NewSupervisor(context.Background(), setup.cfg)
	if err != nil {
		t.Fatalf("NewSupervisor(%s): %v", home, err)
	}
	h.sup = sup
	if !setup.ownSystem {
		sup.Subscribe(actors.EventFilter{}, observe) // closed by Shutdown
	}
	watchDeadLetters(t, sup.System())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := sup.Shutdown(ctx, actors.StopAll); err != nil {
			t.Errorf("Shutdown(StopAll): %v", err)
		}
	})
	return h
}

// checkGoroutines fails the test if goroutines started during it are still
// running once its cleanups have run (goleak retries for a while, so
// goroutines on their way out are not reported).
func checkGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := testutil.LeaksAfterGrace(before); err != nil {
			t.Errorf("goroutines left behind by this test: %v", err)
		}
	})
}

// testLogger returns a logger that writes into a buffer, dumped into the
// test log only when the test failed. BOXSUP_TEST_LOG sets the level
// (default info).
func testLogger(t *testing.T) *logrus.Logger {
	t.Helper()
	buf := &testutil.SyncBuffer{}
	level := os.Getenv("BOXSUP_TEST_LOG")
	if level == "" {
		level = "info"
	}
	log, err := logging.New(logging.Options{Level: level, Out: buf})
	if err != nil {
		t.Fatalf("logging.New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervisor log:\n%s", buf.String())
		}
	})
	return log
}

// ctx returns a context for one facade call.
func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	h.t.Cleanup(cancel)
	return ctx
}

// spec returns a guest spec running exe with args, marked for the leftover
// scan. PATH is given because a guest's environment is the spec's alone.
func (h *harness) spec(exe string, args ...string) messages.InstanceSpec {
	return guestSpec(h.home, exe, args...)
}

func guestSpec(home, exe string, args ...string) messages.InstanceSpec {
	return messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{
		Executable: exe,
		Args:       args,
		Env:        []string{"PATH=/usr/bin:/bin", markerEnv + "=" + home},
	}}
}

// sleepSpec is the usual guest: a sleep that outlives any test.
func (h *harness) sleepSpec() messages.InstanceSpec { return h.spec("/bin/sleep", "300") }

// start starts a box and fails the test unless it is running.
func (h *harness) start(req messages.StartBox) messages.BoxStatus {
	h.t.Helper()
	h.procs.useBox(req.ID)
	st, err := h.sup.Start(h.ctx(), req)
	if err != nil {
		h.t.Fatalf("Start(%s): %v", req.ID, err)
	}
	if st.State != messages.StateRunning || st.PID <= 0 {
		h.t.Fatalf("Start(%s) = state %q pid %d, want running with a pid", req.ID, st.State, st.PID)
	}
	h.procs.track(st.PID, "shim of "+req.ID)
	return st
}

// startSleeper starts a box running the sleep guest.
func (h *harness) startSleeper(id string) messages.BoxStatus {
	h.t.Helper()
	return h.start(messages.StartBox{ID: id, Spec: h.sleepSpec()})
}

// status returns a box's status and fails the test on error.
func (h *harness) status(id string) messages.BoxStatus {
	h.t.Helper()
	st, err := h.sup.Status(h.ctx(), id)
	if err != nil {
		h.t.Fatalf("Status(%s): %v", id, err)
	}
	return st
}

// boxDirExists reports whether the home has a directory for id.
func (h *harness) boxDirExists(id string) bool {
	_, err := os.Lstat(filepath.Join(h.home, "boxes", id))
	return err == nil
}

// eventually polls cond until it holds or waitTimeout passes; cond returns
// a description of what it saw, used in the failure message.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s; last seen: %s", what, waitTimeout, saw)
		}
		time.Sleep(pollInterval)
	}
}

// requireCode fails unless err is a typed boxsup error with want's code.
func requireCode(t *testing.T, what string, err error, want messages.ErrorCode) {
	t.Helper()
	var e *messages.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error %v (%T), want a *messages.Error with code %s", what, err, err, want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error code %s (%q), want %s", what, e.Code, e.Msg, want)
	}
}

// watchDeadLetters logs, at the end of the test, how many messages of each
// type went to dead letters (a stopped actor, or a requester that had given
// up): not a failure, but where to look when a reply goes missing.
func watchDeadLetters(t *testing.T, sys *actor.ActorSystem) {
	var mu sync.Mutex
	counts := map[string]int{}
	sub := sys.EventStream.Subscribe(func(evt any) {
		if d, ok := evt.(*actor.DeadLetterEvent); ok {
			mu.Lock()
			counts[fmt.Sprintf("%T", d.Message)]++
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		sys.EventStream.Unsubscribe(sub)
		mu.Lock()
		defer mu.Unlock()
		if len(counts) > 0 {
			t.Logf("dead letters: %v", counts)
		}
	})
}
