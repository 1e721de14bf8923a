package actors

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// Bounds for conditions that should hold within milliseconds; a test waits
// on the condition, never on the clock.
const (
	testTimeout = 30 * time.Second
	pollEvery   = 5 * time.Millisecond
)

// testSup is an internal test's supervisor with its home and log.
type testSup struct {
	t   *testing.T
	sup *Supervisor
	log *testutil.SyncBuffer
}

// newTestSup starts a supervisor on a fresh home with the test's hooks and
// fault injection on. Cleanup stops every box and checks that no process
// of the home is left.
func newTestSup(t *testing.T, edit ...func(*Config)) *testSup {
	t.Helper()
	if testShim == "" {
		t.Fatal("the reference shim was not built (TestMain)")
	}
	log := &testutil.SyncBuffer{}
	logger := logrus.New()
	logger.SetOutput(log)
	logger.SetLevel(logrus.DebugLevel)
	cfg := Config{Home: t.TempDir(), ShimBinary: testShim, Logger: logger, faultInjection: true}
	for _, e := range edit {
		e(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	sup, err := NewSupervisor(ctx, cfg)
	if err != nil {
		t.Fatalf("NewSupervisor: %v", err)
	}
	ts := &testSup{t: t, sup: sup, log: log}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := sup.Shutdown(ctx, StopAll); err != nil {
			t.Errorf("Shutdown(StopAll): %v", err)
		}
		if left := shimsOfHome(sup.Home()); len(left) > 0 {
			t.Errorf("shims of the home left running after Shutdown(StopAll): %v", left)
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", log.String())
		}
	})
	return ts
}

func (ts *testSup) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	ts.t.Cleanup(cancel)
	return ctx
}

// spec is a guest running argv, with the test's home marked in its
// environment.
func spec(argv ...string) messages.InstanceSpec {
	return messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{Executable: argv[0], Args: argv[1:]}}
}

// eventually polls cond until it holds or the test times out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, testTimeout, pollEvery, what, cond)
}

// shimsOfHome lists the pids of running (not zombie) shims whose working
// directory lies in home.
func shimsOfHome(home string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err != nil || !strings.HasPrefix(cwd, home+"/") {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(raw), "--box-id") {
			continue
		}
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// gate is a test hook that decides, per event, whether a box's event goes
// through now or is held back until the test (or a later event) releases
// it: the way to force an order of events on every run.
type gate struct {
	mu     sync.Mutex
	decide func(box string, ev lifecycle.Event, send func(lifecycle.Event), g *gate) bool // true: handled (held or sent)
	held   []heldEvent
	seen   []lifecycle.Event
}

type heldEvent struct {
	box  string
	ev   lifecycle.Event
	send func(lifecycle.Event)
}

func (g *gate) hooks() *testHooks {
	return &testHooks{deliver: func(box string, ev lifecycle.Event, send func(lifecycle.Event)) {
		g.mu.Lock()
		g.seen = append(g.seen, ev)
		decide := g.decide
		g.mu.Unlock()
		if decide == nil || !decide(box, ev, send, g) {
			send(ev)
		}
	}}
}

// hold keeps an event back.
func (g *gate) hold(box string, ev lifecycle.Event, send func(lifecycle.Event)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = append(g.held, heldEvent{box, ev, send})
}

// release sends every held event that match selects, in the order held.
func (g *gate) release(match func(heldEvent) bool) int {
	g.mu.Lock()
	var keep, out []heldEvent
	for _, h := range g.held {
		if match(h) {
			out = append(out, h)
		} else {
			keep = append(keep, h)
		}
	}
	g.held = keep
	g.mu.Unlock()
	for _, h := range out {
		h.send(h.ev)
	}
	return len(out)
}

// heldCount counts held events that match selects.
func (g *gate) heldCount(match func(heldEvent) bool) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, h := range g.held {
		if match(h) {
			n++
		}
	}
	return n
}
