package layout

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// Names of the files in a box directory.
const (
	specFileName     = "spec.json"
	stateFileName    = "state.json"
	exitFileName     = "exit.json"
	prevExitFileName = "exit.previous.json"
	shimLogFileName  = "shim.log"
	consoleFileName  = "console.log"
	socketsDirName   = "sockets"
)

// tombstoneMarker is part of the hidden name a box directory is renamed to
// before it is deleted: boxes/.ID.removed-<random>.
const tombstoneMarker = ".removed-"

// tombstoneRandomBytes is the size of a hidden name's random part (twice
// as many hex digits).
const tombstoneRandomBytes = 8

// removeAll deletes a tree. Tests replace it to simulate a crash half-way.
var removeAll = os.RemoveAll

// Box is one box's directory. Get one from Home.Box; the zero Box is not
// usable. A Box is a value with no open resources.
type Box struct {
	// ID is the validated box ID.
	ID string
	// Dir is HOME/boxes/ID.
	Dir string
}

// SpecPath returns Dir/spec.json: the StartBox that created the box (mode
// 0600: it holds secrets; never log it).
func (b Box) SpecPath() string { return filepath.Join(b.Dir, specFileName) }

// StatePath returns Dir/state.json (mode 0600).
func (b Box) StatePath() string { return filepath.Join(b.Dir, stateFileName) }

// ExitPath returns Dir/exit.json, written by the shim when it exits.
func (b Box) ExitPath() string { return filepath.Join(b.Dir, exitFileName) }

// PrevExitPath returns Dir/exit.previous.json, the previous run's exit record.
func (b Box) PrevExitPath() string { return filepath.Join(b.Dir, prevExitFileName) }

// ShimLogPath returns Dir/shim.log, the shim's stdout and stderr.
func (b Box) ShimLogPath() string { return filepath.Join(b.Dir, shimLogFileName) }

// ConsoleLogPath returns Dir/console.log, the guest's output.
func (b Box) ConsoleLogPath() string { return filepath.Join(b.Dir, consoleFileName) }

// SocketsDir returns Dir/sockets, the real directory for the box's sockets.
// Bind through SocketDir(b.SocketsDir(), name) when the path may be too long.
func (b Box) SocketsDir() string { return filepath.Join(b.Dir, socketsDirName) }

// check refuses a Box that did not come from Home.Box (a zero value, or a Dir
// that is not .../ID), before Create or Remove acts on its Dir.
func (b Box) check() error {
	if err := ValidateID(b.ID); err != nil {
		return err
	}
	if !filepath.IsAbs(b.Dir) || filepath.Base(b.Dir) != b.ID || filepath.Clean(b.Dir) != b.Dir {
		return messages.Errorf(messages.ErrInvalidID, "%q: box directory %q does not match the id", b.ID, b.Dir)
	}
	return nil
}

// openBoxes opens and checks the boxes directory that holds b.
func (b Box) openBoxes() (*os.File, error) {
	boxes, err := openDirPath(filepath.Dir(b.Dir))
	if err != nil {
		return nil, err
	}
	if err := checkOpenDir(boxes); err != nil {
		boxes.Close()
		return nil, err
	}
	return boxes, nil
}

// openDir opens and checks the box directory (and the boxes directory
// above it), never following a symbolic link. A missing box satisfies
// errors.Is(err, fs.ErrNotExist).
func (b Box) openDir() (*os.File, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	boxes, err := b.openBoxes()
	if err != nil {
		return nil, err
	}
	defer boxes.Close()
	dir, err := openDirAt(boxes, b.ID)
	if err != nil {
		return nil, err
	}
	if err := checkOpenDir(dir); err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

// Create makes the box directory and its sockets/ subdirectory, both 0700.
// It is exclusive: an existing box is messages.ErrAlreadyExists. On failure
// nothing is left behind.
func (b Box) Create() error {
	dir, err := b.create()
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := syncDirPath(filepath.Dir(b.Dir)); err != nil {
		_ = removeAll(b.Dir)
		return fmt.Errorf("create box %q: %w", b.ID, err)
	}
	return nil
}

// create makes the box directory and sockets/ and returns the open box
// directory. On failure nothing is left behind.
func (b Box) create() (*os.File, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	boxes, err := b.openBoxes()
	if err != nil {
		return nil, fmt.Errorf("create box %q: %w", b.ID, err)
	}
	defer boxes.Close()
	if err := mkdirAt(boxes, b.ID); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, messages.Errorf(messages.ErrAlreadyExists, "%q: %s exists", b.ID, b.Dir)
		}
		return nil, fmt.Errorf("create box %q: %w", b.ID, err)
	}
	dir, err := openDirAt(boxes, b.ID)
	if err == nil {
		if err = mkdirAt(dir, socketsDirName); err != nil {
			dir.Close()
		}
	}
	if err != nil {
		_ = removeAll(b.Dir)
		return nil, fmt.Errorf("create box %q: %w", b.ID, err)
	}
	return dir, nil
}

// Prepare creates the box directory like Create and writes spec.json, both
// atomically visible but not yet durable: no fsync. It lets a box start while
// Persist makes the same files durable in parallel, keeping about a
// millisecond of fsyncs off the start path. On error nothing is left behind.
func (b Box) Prepare(spec messages.StartBox) error {
	dir, err := b.create()
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := writeJSONAt(dir, specFileName, spec, secretFileMode, false); err != nil {
		_ = removeAll(b.Dir)
		return fmt.Errorf("create box %q: %w", b.ID, err)
	}
	return nil
}

// Persist makes what Prepare wrote durable: it fsyncs spec.json, the box
// directory and the boxes directory that holds it.
func (b Box) Persist() error {
	if err := b.persist(); err != nil {
		return fmt.Errorf("persist box %q: %w", b.ID, err)
	}
	return nil
}

func (b Box) persist() error {
	boxes, err := b.openBoxes()
	if err != nil {
		return err
	}
	defer boxes.Close()
	dir, err := openDirAt(boxes, b.ID)
	if err != nil {
		return err
	}
	defer dir.Close()
	f, err := openAt(int(dir.Fd()), dir.Name(), specFileName, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	err = errors.Join(f.Sync(), f.Close())
	if err == nil {
		err = syncDir(dir)
	}
	if err == nil {
		err = syncDir(boxes)
	}
	return err
}

// Exists reports whether the box directory exists.
func (b Box) Exists() bool {
	fi, err := os.Lstat(b.Dir)
	return err == nil && fi.IsDir()
}

// Remove deletes the box directory. It is crash-safe: the directory is first
// renamed to a hidden boxes/.ID.removed-<random> (which BoxIDs skips and
// Home.SweepRemoved and Box.SweepRemoved delete), so a crash or a failure
// during the deletion never leaves a half box that looks real; the error of
// a failure names that directory. A missing box is messages.ErrNotFound.
// The deletion never follows a symbolic link out of the box directory. The
// box's short socket directory, if any, is removed too (best effort).
func (b Box) Remove() error {
	if err := b.check(); err != nil {
		return err
	}
	boxes, err := b.openBoxes()
	if err != nil {
		return fmt.Errorf("remove box %q: %w", b.ID, err)
	}
	defer boxes.Close()
	var st unix.Stat_t
	err = unix.Fstatat(int(boxes.Fd()), b.ID, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) || (err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR) {
		return messages.Errorf(messages.ErrNotFound, "%q: no directory %s", b.ID, b.Dir)
	}
	if err != nil {
		return fmt.Errorf("remove box %q: %w", b.ID, err)
	}
	tomb := "." + b.ID + tombstoneMarker + randomHex(tombstoneRandomBytes)
	if err := renameAt(boxes, b.ID, tomb); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return messages.Errorf(messages.ErrNotFound, "%q: no directory %s", b.ID, b.Dir)
		}
		return fmt.Errorf("remove box %q: %w", b.ID, err)
	}
	// Make the rename durable before deleting, so that after a power cut the
	// box is either whole or hidden, never half-deleted under its own name.
	if err := syncDir(boxes); err != nil {
		return fmt.Errorf("remove box %q: %w", b.ID, err)
	}
	// os.RemoveAll works with openat/unlinkat and O_NOFOLLOW: a planted link
	// is removed, never followed.
	tombPath := filepath.Join(filepath.Dir(b.Dir), tomb)
	if err := removeAll(tombPath); err != nil {
		return filesLeftError(b.ID, tombPath, err)
	}
	// A leftover short socket directory is empty, harmless and reused by a
	// later box with the same ID, so a failure here is not the caller's concern.
	_ = RemoveSocketDir(b.SocketsDir())
	return nil
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
