package tests

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// TestFilesOfAFailedRemovalAreDeletedLater: a removal hides the box's
// directory and then cannot delete a file in it (immutable, as `chattr +i`
// makes one). The error names the directory left and says when it goes;
// removing the box again tries again; and a supervisor that opens the home
// deletes what earlier removals left, or, while it cannot, warns naming it.
func TestFilesOfAFailedRemovalAreDeletedLater(t *testing.T) {
	warns := &warnings{}
	hook := withConfig(func(c *actors.Config) { c.Logger.(*logrus.Logger).AddHook(warns) })
	h := newHarness(t, hook)
	boxes := filepath.Join(h.home, "boxes")
	pin := func(id string) string {
		t.Helper()
		keep := filepath.Join(boxes, id, "keep")
		if err := os.WriteFile(keep, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := testutil.SetImmutable(keep, true); err != nil {
			t.Skipf("cannot make a file undeletable here (needs root and a file system with chattr +i): %v", err)
		}
		return keep
	}
	t.Cleanup(func() { unpinAll(boxes) }) // before the home is removed
	for _, id := range []string{"tomb", "tomb2"} {
		h.startSleeper(id)
		if _, err := h.sup.Stop(h.ctx(), id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		pin(id)
	}

	_, err := h.sup.Remove(h.ctx(), "tomb", false)
	tomb := tombstoneOf(t, boxes, "tomb")
	if err == nil || !strings.Contains(err.Error(), tomb) ||
		!strings.Contains(err.Error(), "deleted when the box is removed again or a supervisor next opens the home") {
		t.Fatalf("Remove of a box whose file cannot be deleted = %v; want an error naming %s and when it is deleted", err, tomb)
	}
	if _, err := h.sup.Remove(h.ctx(), "tomb", false); err == nil || !strings.Contains(err.Error(), tomb) {
		t.Errorf("Remove again while the file still cannot be deleted = %v; want the same error (it was tried again)", err)
	}
	// A start meanwhile is refused at once: its record could never be
	// written (an operator's start used to wait 40 s for it, then time out).
	if _, err := h.sup.StartExisting(h.ctx(), "tomb"); !errors.Is(err, messages.ErrBusy) || !strings.Contains(err.Error(), "remove it again") {
		t.Errorf("StartExisting of a box whose removal left files = %v; want ErrBusy saying to remove it again", err)
	}
	unpin(t, filepath.Join(tomb, "keep"))
	if _, err := h.sup.Remove(h.ctx(), "tomb", false); err != nil {
		t.Errorf("Remove again once the file can be deleted: %v", err)
	}
	if _, err := os.Lstat(tomb); !os.IsNotExist(err) {
		t.Errorf("%s is still there after the removal was tried again (stat: %v)", tomb, err)
	}

	// A failed removal, then the supervisor goes: the next one to open the
	// home tries again.
	if _, err := h.sup.Remove(h.ctx(), "tomb2", false); err == nil {
		t.Fatal("Remove of tomb2 succeeded although a file in it cannot be deleted")
	}
	tomb2 := tombstoneOf(t, boxes, "tomb2")
	shutdown(t, h.sup)
	warns.reset()
	h = startHarness(t, h.home, hook)
	if !warns.mention(tomb2) {
		t.Errorf("a supervisor that could not delete %s did not warn about it; warnings: %v", tomb2, warns.all())
	}
	shutdown(t, h.sup)
	unpin(t, filepath.Join(tomb2, "keep"))
	h = startHarness(t, h.home)
	if _, err := os.Lstat(tomb2); !os.IsNotExist(err) {
		t.Errorf("%s is still there after a supervisor opened the home (stat: %v)", tomb2, err)
	}
}

// tombstoneOf returns the one hidden directory a removal of box id left.
func tombstoneOf(t *testing.T, boxes, id string) string {
	t.Helper()
	found, err := filepath.Glob(filepath.Join(boxes, "."+id+".removed-*"))
	if err != nil || len(found) != 1 {
		t.Fatalf("the hidden directories of removed box %s: %v (%v), want one", id, found, err)
	}
	return found[0]
}

// unpin makes a file deletable again.
func unpin(t *testing.T, path string) {
	t.Helper()
	if err := testutil.SetImmutable(path, false); err != nil {
		t.Fatal(err)
	}
}

// unpinAll makes every file under dir deletable again, so that the test's
// home can be removed whatever happened.
func unpinAll(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			_ = testutil.SetImmutable(path, false)
		}
		return nil
	})
}

// shutdown shuts a supervisor down, leaving its boxes as they are.
func shutdown(t *testing.T, sup *actors.Supervisor) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := sup.Shutdown(ctx, actors.LeaveRunning); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
