package layout

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
)

// TestOpenCreatesNothingAboveAnUntrustedAncestor: the directories above the
// home are created only once those that exist have passed the checks, so a
// home under another user's directory leaves no trace there.
func TestOpenCreatesNothingAboveAnUntrustedAncestor(t *testing.T) {
	t.Parallel()
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(open, "x", "y", "z", "home"))
	wantUnsafe(t, "home below a world-writable directory", err, open)
	assertEmpty(t, open)
}

// TestOpenCreatesNothingInADirectoryOfAnotherUser is the same below
// another user's directory (BOXSUP_HOME=/home/them/x/y/z).
func TestOpenCreatesNothingInADirectoryOfAnotherUser(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	theirs := filepath.Join(t.TempDir(), "them")
	mustMkdir(t, theirs)
	if err := os.Chown(theirs, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(theirs, "x", "y", "z"))
	wantUnsafe(t, "home below a directory of nobody", err, theirs)
	assertEmpty(t, theirs)
}
