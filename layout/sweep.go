package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SweepRemoved deletes the files of removed boxes that are still there: the
// hidden ".ID.removed-*" directories under root/boxes that a crash, or a
// file that could not be deleted, left behind in Box.Remove. The error
// joins one error per directory that could not be deleted, each naming
// it. Call it when a supervisor opens the home, under the home lock.
func (h *Home) SweepRemoved() error {
	return sweepTombstones(h.BoxesDir(), isTombstone, func(path string, err error) error {
		return fmt.Errorf("the files of a removed box are left in %s: %w", path, err)
	})
}

// SweepRemoved deletes the files left by earlier removals of this box (see
// Home.SweepRemoved), e.g. when a removal that failed is tried again and
// finds the box directory already gone. The error says what is left.
func (b Box) SweepRemoved() error {
	if err := b.check(); err != nil {
		return err
	}
	return sweepTombstones(filepath.Dir(b.Dir), func(name string) bool { return isTombstoneOf(name, b.ID) },
		func(path string, err error) error { return filesLeftError(b.ID, path, err) })
}

// sweepTombstones deletes the entries of the boxes directory whose names
// match; left says what one that could not be deleted leaves.
func sweepTombstones(boxesDir string, match func(name string) bool, left func(path string, err error) error) error {
	entries, err := os.ReadDir(boxesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking for the files of removed boxes: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !match(e.Name()) {
			continue
		}
		// os.RemoveAll works with openat/unlinkat and O_NOFOLLOW: a
		// planted link is removed, never followed.
		path := filepath.Join(boxesDir, e.Name())
		if err := removeAll(path); err != nil {
			errs = append(errs, left(path, err))
		}
	}
	return errors.Join(errs...)
}

// ErrFilesLeft marks the error of a removal that hid the box directory but
// could not delete all of it: the box is gone from view and from its
// directory, its files are not (errors.Is). Nothing can be written for the
// box any more; only another removal, or the next supervisor, finishes it.
var ErrFilesLeft = errors.New("the box's directory is hidden for removal, with files left")

// filesLeftError is the error of a removal that hid the box directory but
// could not delete all of it (ErrFilesLeft).
func filesLeftError(id, path string, err error) error {
	return &filesLeft{msg: fmt.Sprintf("remove box %q: its files are left in %s and are deleted when the box is removed again or a supervisor next opens the home: %v",
		id, path, err), cause: err}
}

// filesLeft is ErrFilesLeft with its text and cause.
type filesLeft struct {
	msg   string
	cause error
}

func (e *filesLeft) Error() string { return e.msg }

// Unwrap returns the cause and ErrFilesLeft.
func (e *filesLeft) Unwrap() []error { return []error{e.cause, ErrFilesLeft} }

// isTombstone reports whether name is a box directory being removed.
func isTombstone(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tombstoneMarker)
}

// isTombstoneOf reports whether name is a directory of box id being removed:
// ".ID.removed-" and the random part Box.Remove adds.
func isTombstoneOf(name, id string) bool {
	rest, ok := strings.CutPrefix(name, "."+id+tombstoneMarker)
	if !ok || len(rest) != 2*tombstoneRandomBytes {
		return false
	}
	return strings.Trim(rest, "0123456789abcdef") == ""
}
