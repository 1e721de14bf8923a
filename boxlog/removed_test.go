package boxlog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// removableShim is a fake shim whose box directory can be removed as
// Box.Remove does: renamed away, then its files deleted.
func removableShim(t *testing.T) (s *fakeShim, remove func()) {
	t.Helper()
	parent := t.TempDir()
	s = &fakeShim{t: t, dir: filepath.Join(parent, "box"), maxFiles: 3}
	must(t, os.Mkdir(s.dir, 0o700))
	return s, func() {
		tomb := filepath.Join(parent, ".removed-box")
		must(t, os.Rename(s.dir, tomb))
		s.dir = tomb
		must(t, os.Remove(s.path()))
	}
}

// TestFollowEndsWhenItsBoxIsRemoved: a follower whose box is removed once at
// rest (a foreground run --rm removes it while its console is followed) ends
// by itself with every line, instead of following nothing for ever.
func TestFollowEndsWhenItsBoxIsRemoved(t *testing.T) {
	t.Parallel()
	s, remove := removableShim(t)
	s.write(lines(1, 2))
	waits := 0
	h := hooks{waiting: func() {
		waits++
		if waits == 1 {
			s.write(lines(3, 3))
			remove()
		}
	}}
	var b bytes.Buffer
	if err := copyLog(context.Background(), &b, s.path(), Options{Follow: true}, h); err != nil || b.String() != seqText(1, 3) {
		t.Errorf("follower of a removed box: %q, %v; want every line and nil", b.String(), err)
	}
}

// TestFollowEndsWhileItsBoxIsBeingRemoved: the deletion of a removed box's
// files keeps changing what the snapshot's walk sees (here on every walk);
// that is the log's end, not a rotation that never settles (issue: a
// foreground run --rm exited 1 "console.log was renamed during each of 100
// attempts to read it").
func TestFollowEndsWhileItsBoxIsBeingRemoved(t *testing.T) {
	t.Parallel()
	s, remove := removableShim(t)
	s.write(lines(1, 2))
	removing := false
	h := hooks{
		waiting: func() {
			if !removing {
				removing = true
				remove()
			}
		},
		opened: func(_, index int) {
			if removing && index == 1 {
				// Another file of the box comes and goes between the
				// walk's two looks.
				other := s.name(1)
				if _, err := os.Lstat(other); err == nil {
					must(t, os.Remove(other))
				} else {
					must(t, os.WriteFile(other, nil, 0o600))
				}
			}
		},
	}
	var b bytes.Buffer
	if err := copyLog(context.Background(), &b, s.path(), Options{Follow: true}, h); err != nil || b.String() != seqText(1, 2) {
		t.Errorf("follower of a box being removed: %q, %v; want every line and nil", b.String(), err)
	}
}
