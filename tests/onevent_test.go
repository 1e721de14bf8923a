package tests

import (
	"context"
	"sync"
	"testing"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// TestOnEventSeesAdoptionAtBoot: Config.OnEvent is subscribed before the
// boot reconcile, so it receives the BoxAdopted of a box found running,
// which a Subscribe after NewSupervisor returns would miss.
func TestOnEventSeesAdoptionAtBoot(t *testing.T) {
	checkGoroutines(t)
	home := t.TempDir()
	first := startHarness(t, home)
	spec := first.sleepSpec()
	spec.Detach = true
	kept := first.start(messages.StartBox{ID: "kept", Spec: spec})
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := first.sup.Shutdown(ctx, actors.LeaveRunning); err != nil {
		t.Fatalf("Shutdown(LeaveRunning): %v", err)
	}

	var mu sync.Mutex
	var adopted []messages.BoxAdopted
	startHarness(t, home, withConfig(func(c *actors.Config) {
		c.OnEvent = func(ev messages.Event) {
			if a, ok := ev.(messages.BoxAdopted); ok {
				mu.Lock()
				adopted = append(adopted, a)
				mu.Unlock()
			}
		}
	}))
	eventually(t, "OnEvent to receive the boot-time BoxAdopted of kept", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range adopted {
			if a.BoxID == "kept" && a.PID == kept.PID {
				return true, ""
			}
		}
		return false, "no BoxAdopted for kept with its original pid"
	})
}
