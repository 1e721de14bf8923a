package tests

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// TestTwoSupervisorsOnOneSystemSeeOnlyTheirEvents: two supervisors embedded
// in one actor system (Config.System), each with a box of the same ID:
// every Subscribe and OnEvent callback gets its own supervisor's events
// only, each naming its home (issue: both saw both, and events carried no
// home to tell them apart).
func TestTwoSupervisorsOnOneSystemSeeOnlyTheirEvents(t *testing.T) {
	checkGoroutines(t)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	t.Cleanup(sys.Shutdown) // runs after both supervisors' Shutdown

	type side struct {
		h                 *harness
		subbed, onEvented *eventLog
		pid               int
		fence             string
	}
	sides := []*side{{}, {}}
	for _, s := range sides {
		s.subbed, s.onEvented = &eventLog{}, &eventLog{}
		onEvent := s.onEvented
		s.h = startHarness(t, t.TempDir(), withConfig(func(c *actors.Config) {
			c.System = sys
			c.OnEvent = onEvent.add
		}))
		s.h.sup.Subscribe(actors.EventFilter{}, s.subbed.add)
	}
	for _, s := range sides {
		s.pid = s.h.startSleeper("web").PID
		if _, err := s.h.sup.Stop(s.h.ctx(), "web", 10*time.Second); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	// A fence: each subscriber gets events in the order they were
	// published, so once it has seen its own fence box's events it has seen
	// everything published before them, the other supervisor's box too.
	// (The fences have IDs of their own: the leftover check of one home
	// would take the other's running shim of a shared ID for its own.)
	for i, s := range sides {
		s.fence = fmt.Sprintf("fence-%d", i)
		s.h.startSleeper(s.fence)
	}
	for i, s := range sides {
		for name, log := range map[string]*eventLog{"Subscribe": s.subbed, "OnEvent": s.onEvented} {
			evs := log.waitFor(t, "the fence box to be ready", func(evs []messages.Event) bool {
				return len(eventsOf[messages.BoxReady](evs, s.fence)) > 0
			})
			for _, ev := range evs {
				if home := ev.Header().Home; home != s.h.sup.Home() {
					t.Errorf("supervisor %d's %s got a %s of home %q, want only its own %q", i, name, ev.Kind(), home, s.h.sup.Home())
				}
			}
			for _, started := range eventsOf[messages.BoxStarted](evs, "web") {
				if started.PID != s.pid {
					t.Errorf("supervisor %d's %s got BoxStarted of pid %d; its box ran as pid %d", i, name, started.PID, s.pid)
				}
			}
			if n := len(eventsOf[messages.BoxStarted](evs, "web")); n != 1 {
				t.Errorf("supervisor %d's %s got %d BoxStarted, want 1 (its own)", i, name, n)
			}
		}
	}
}
