package tests

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
)

// TestShutdownRemovesTheHomesCgroups: a box runs in a cgroup of its own
// (recorded in state.json) under a parent per home; once the supervisor has
// stopped everything and shut down, neither is left in the hierarchy.
func TestShutdownRemovesTheHomesCgroups(t *testing.T) {
	h := newHarness(t)
	h.startSleeper("cg")
	home, err := layout.Open(h.home)
	if err != nil {
		t.Fatal(err)
	}
	box, err := home.Box("cg")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := box.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Cgroup == "" {
		t.Skip("boxes run without a cgroup here (no writable cgroup v2 hierarchy)")
	}
	if _, err := os.Stat(rec.Cgroup); err != nil {
		t.Fatalf("the box's recorded cgroup %s: %v", rec.Cgroup, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.sup.Shutdown(ctx, actors.StopAll); err != nil {
		t.Fatalf("Shutdown(StopAll): %v", err)
	}
	for _, dir := range []string{rec.Cgroup, filepath.Dir(rec.Cgroup)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Shutdown (stat: %v)", dir, err)
		}
	}
}
