package boxlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// Bounds of the file scans.
const (
	// maxIndex bounds the walk over FILE.<k>: well past
	// messages.MaxLogMaxFiles, and finite whatever the directory holds.
	maxIndex = 10 * messages.MaxLogMaxFiles
	// snapshotAttempts bounds the retries of a snapshot that a rotation
	// interrupted. A rotation takes a few renames and a shim rotates at
	// most once per max_bytes (64 KiB or more) of output; a walk takes a
	// few dozen microseconds, so a retry is rare and a hundred in a row
	// means something else is renaming the files.
	snapshotAttempts = 100
)

// logDir is the directory that holds a log. Its descriptor serves the
// checks of names (fstatat) and the inotify watch; files are opened through
// layout's checked opens.
type logDir struct {
	dir  *os.File // O_RDONLY|O_DIRECTORY
	base string   // the log's name: console.log
	// opened, a test hook, runs in a snapshot's walk after each index.
	opened func(attempt, index int)
}

// logFile is one file of the log, open (pinned: its inode cannot be reused
// while the reader holds it, so its identity stays meaningful).
type logFile struct {
	f        *os.File
	dev, ino uint64
}

func (f *logFile) close() { _ = f.f.Close() }

// same reports whether st describes f.
func (f *logFile) same(st *unix.Stat_t) bool { return f.dev == st.Dev && f.ino == st.Ino }

// openLogDir opens the directory of the log at path. A missing directory
// is messages.ErrNotFound; one that is a symbolic link, or that others may
// write to, is refused (messages.ErrUnsafeHome).
func openLogDir(path string) (*logDir, error) {
	if !filepath.IsAbs(path) {
		return nil, messages.Errorf(messages.ErrBadSpec, "log %q: want an absolute path", path)
	}
	dirPath, base := filepath.Dir(path), filepath.Base(path)
	fd, err := unix.Open(dirPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, messages.Errorf(messages.ErrNotFound, "log directory %s does not exist", dirPath)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		return nil, messages.Errorf(messages.ErrUnsafeHome, "log directory %s is not a directory (a symbolic link is not followed)", dirPath)
	case err != nil:
		return nil, fmt.Errorf("open log directory %s: %w", dirPath, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("stat log directory %s: %w", dirPath, err)
	}
	if st.Mode&0o022 != 0 {
		_ = unix.Close(fd)
		return nil, messages.Errorf(messages.ErrUnsafeHome, "log directory %s is writable by others (mode %#o): its files cannot be trusted", dirPath, st.Mode&0o7777)
	}
	return &logDir{dir: os.NewFile(uintptr(fd), dirPath), base: base}, nil
}

func (d *logDir) close() { _ = d.dir.Close() }

// fd is the directory's descriptor for the *at calls (a directory is never
// in the poller, so Fd changes nothing).
func (d *logDir) fd() int { return int(d.dir.Fd()) }

// name returns the k-th file's name: FILE for 0 (the one being written),
// FILE.<k> for the rotated ones, newest first.
func (d *logDir) name(k int) string {
	if k == 0 {
		return d.base
	}
	return d.base + "." + strconv.Itoa(k)
}

// open opens the file name of the log for reading; nil when it does not
// exist. It goes through layout.OpenRead: never through a symbolic link
// (openat2 with RESOLVE_NO_SYMLINKS where the kernel has it), and only a
// regular file of this user or root that group and others cannot write
// (messages.ErrUnsafeHome otherwise).
func (d *logDir) open(name string) (*logFile, error) {
	f, err := layout.OpenRead(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat %s: %w", d.path(name), err)
	}
	return &logFile{f: f, dev: st.Dev, ino: st.Ino}, nil
}

func (d *logDir) path(name string) string { return filepath.Join(d.dir.Name(), name) }

// current reports whether FILE is f now: false when it is another file or
// missing (f moved to FILE.1 by a rotation, or not created yet).
func (d *logDir) current(f *logFile) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd(), d.base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && f.same(&st)
}

// exists reports whether FILE exists.
func (d *logDir) exists() bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd(), d.base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// snapshot opens the log's files as they all were at one instant, oldest
// first.
//
// A shim rotates by renames (FILE.<m> to FILE.<m+1>, ..., FILE to FILE.1,
// then a new FILE), so a plain walk over the names can meet a file twice or
// miss one. The walk is therefore checked: it opens FILE, FILE.1, ... until
// two indices in a row are missing (a rotation leaves at most one gap at any
// instant), then looks at every name again. The files it opened are pinned,
// so their inodes cannot be reused; if every name still names the same file
// (or still nothing), no rename happened at any index between its two looks,
// and since the looks at all indices overlap in time, the walk saw one
// instant. Otherwise it starts again.
func (d *logDir) snapshot() ([]*logFile, error) {
	for attempt := 0; attempt < snapshotAttempts; attempt++ {
		files, err := d.walk(attempt)
		if err != nil {
			return nil, err
		}
		if d.unchanged(files) {
			var out []*logFile
			for _, f := range slices.Backward(files) {
				if f != nil {
					out = append(out, f)
				}
			}
			return out, nil
		}
		closeFiles(files)
		if d.moved() {
			// Not a rotation: the box is being removed (Box.Remove
			// renames its directory away, then deletes the files).
			return nil, fmt.Errorf("%s: %w", d.path(d.base), errRemoved)
		}
	}
	return nil, messages.Errorf(messages.ErrBusy, "%s was renamed during each of %d attempts to read it", d.path(d.base), snapshotAttempts)
}

// errRemoved: the log's directory was removed (its box was) while it was
// read. A follower ends there, with what it read.
var errRemoved = errors.New("the log's directory was removed")

// moved reports whether the log's directory is no longer at its path: its
// box was removed (or is being removed), or something else took its place.
func (d *logDir) moved() bool {
	var held, at unix.Stat_t
	if unix.Fstat(d.fd(), &held) != nil {
		return false
	}
	if unix.Lstat(d.dir.Name(), &at) != nil {
		return true
	}
	return held.Dev != at.Dev || held.Ino != at.Ino
}

// walk opens FILE, FILE.1, ... until two indices in a row are missing;
// entry k is nil where index k is missing.
func (d *logDir) walk(attempt int) ([]*logFile, error) {
	var files []*logFile
	missing := 0
	for k := 0; missing < 2; k++ {
		if k > maxIndex {
			closeFiles(files)
			return nil, messages.Errorf(messages.ErrCorruptFile, "%s has more than %d rotated files", d.path(d.base), maxIndex)
		}
		f, err := d.open(d.name(k))
		if err != nil {
			closeFiles(files)
			return nil, err
		}
		files = append(files, f)
		if d.opened != nil {
			d.opened(attempt, k)
		}
		if f == nil {
			missing++
		} else {
			missing = 0
		}
	}
	return files, nil
}

// unchanged reports whether every index still names what walk found there.
func (d *logDir) unchanged(files []*logFile) bool {
	for k, f := range files {
		var st unix.Stat_t
		err := unix.Fstatat(d.fd(), d.name(k), &st, unix.AT_SYMLINK_NOFOLLOW)
		if f == nil {
			if !errors.Is(err, unix.ENOENT) {
				return false
			}
			continue
		}
		if err != nil || !f.same(&st) {
			return false
		}
	}
	return true
}

// after returns the files newer than cur, oldest first, from a fresh
// snapshot (cur nil: every file). When cur is no longer among the files
// (more rotations happened than the shim keeps files), every file is newer
// than cur.
func (d *logDir) after(cur *logFile) ([]*logFile, error) {
	files, err := d.snapshot()
	if err != nil || cur == nil {
		return files, err
	}
	for i, f := range files {
		if f.dev == cur.dev && f.ino == cur.ino {
			closeFiles(files[:i+1])
			return files[i+1:], nil
		}
	}
	return files, nil
}

func closeFiles(files []*logFile) {
	for _, f := range files {
		if f != nil {
			f.close()
		}
	}
}
