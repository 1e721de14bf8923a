package shim

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// maxRotatedIndex bounds the scans for rotated files (FILE.<n>): well past
// messages.MaxLogMaxFiles, so that files a larger max_files left behind are
// found, yet a finite loop whatever the directory holds.
const maxRotatedIndex = 10 * messages.MaxLogMaxFiles

// rotatingLog is a log file capped by size and count (docs/SHIM-PROTOCOL.md,
// "Logs"). FILE is appended to until a write would take it past MaxBytes;
// then FILE.<k> becomes FILE.<k+1> (the oldest is dropped once MaxFiles
// files exist), FILE becomes FILE.1 and a new FILE is created. Writes are
// whole lines and a line never straddles two files.
//
// FILE is opened through layout's checked opens and renamed relative to the
// directory's descriptor, never through a symbolic link: the box directory
// is untrusted input. Its methods are safe for concurrent use.
type rotatingLog struct {
	mu     sync.Mutex
	dir    *os.File // the directory holding FILE (O_PATH)
	name   string   // FILE's base name
	limits messages.LogRotation
	f      *os.File // the current FILE, O_APPEND
	size   int64    // bytes in f
	// torn: a write stopped part-way through a line (disk full, or the file
	// was left so by a shim that was killed): the next write ends that line
	// first, so that the one after it is not glued onto it.
	torn bool
	// movedAway: a rotation moved FILE away but could not open the new
	// one; the next rotation only retries the open.
	movedAway bool
	// reopened, when set, is told the descriptor of every new FILE (shim.log
	// moves it onto fds 1 and 2). An error leaves the new file in use.
	reopened func(fd int) error
}

// openRotatingLog opens (creating it 0600 if needed) the log at path for
// appending, with limits whose zero fields were already defaulted. Rotated
// files beyond the limit that an earlier run left (max_files was larger)
// are removed. An existing FILE that layout's checks refuse (a symbolic
// link, another user's file, a hard link) is an error, never appended to.
func openRotatingLog(path string, limits messages.LogRotation) (*rotatingLog, error) {
	if limits.MaxBytes <= 0 || limits.MaxFiles <= 0 {
		return nil, fmt.Errorf("%s: rotation limits %+v are not set", path, limits)
	}
	dir, err := openDirNoFollow(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	l := &rotatingLog{dir: dir, name: filepath.Base(path), limits: limits}
	if err := l.pruneBeyondLimit(); err != nil {
		_ = dir.Close()
		return nil, err
	}
	if err := l.openCurrent(); err != nil {
		_ = dir.Close()
		return nil, err
	}
	return l, nil
}

// openDirNoFollow opens a directory as an O_PATH descriptor for the *at
// calls, refusing a symbolic link as its last component.
func openDirNoFollow(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open directory", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// dirFD is the directory's descriptor for the *at calls. It is read through
// Fd only for an O_PATH descriptor, which is never in the poller.
func (l *rotatingLog) dirFD() int { return int(l.dir.Fd()) }

// rotatedName is the name of the k-th rotated file: FILE.<k>, FILE for 0.
func (l *rotatingLog) rotatedName(k int) string {
	if k == 0 {
		return l.name
	}
	return l.name + "." + strconv.Itoa(k)
}

// exists reports whether name exists in the directory (of any type).
func (l *rotatingLog) exists(name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(l.dirFD(), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// openCurrent opens FILE for appending, creating it 0600, through
// layout.OpenAppend: never through a symbolic link, and only a regular file
// of this user or root with a single link that group and others cannot
// write.
func (l *rotatingLog) openCurrent() error {
	f, err := layout.OpenAppend(l.path(), 0o600)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		_ = f.Close()
		return &fs.PathError{Op: "stat", Path: l.path(), Err: err}
	}
	// The guest may print its secrets: whatever the file's mode was, it is
	// for this user only (a file created here already is).
	if st.Mode&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			_ = f.Close()
			return err
		}
	}
	if l.reopened != nil {
		if err := l.reopened(int(f.Fd())); err != nil {
			_ = f.Close()
			return err
		}
	}
	if l.f != nil {
		_ = l.f.Close()
	}
	l.f, l.size, l.movedAway = f, st.Size, false
	// An earlier shim killed in the middle of a line left it unterminated.
	l.torn = st.Size > 0 && !endsWithNewline(l.path(), st.Size)
	return nil
}

// endsWithNewline reports whether the file at path, of size bytes, ends
// with a newline; true when it cannot tell.
func endsWithNewline(path string, size int64) bool {
	f, err := layout.OpenRead(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var last [1]byte
	n, err := f.ReadAt(last[:], size-1)
	return err != nil || n != 1 || last[0] == '\n'
}

func (l *rotatingLog) path() string { return filepath.Join(l.dir.Name(), l.name) }

// write appends p, which holds whole lines, rotating first whenever the next
// lines would not fit. A line longer than a whole file is written alone
// into a fresh file. On an error the rest of p is not written: the caller
// drops it (the guest must never be blocked by a full disk).
func (l *rotatingLog) write(p []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.torn {
		// End the cut line, or leave it as the last line of a rotated file
		// when the file is full (readers take that as complete).
		var err error
		if l.size < l.limits.MaxBytes {
			err = l.writeLocked([]byte{'\n'})
		} else {
			err = l.rotate()
		}
		if err != nil {
			return err
		}
		l.torn = false
	}
	for len(p) > 0 {
		n := len(p)
		if room := l.limits.MaxBytes - l.size; int64(n) > room {
			n = 0
			if room > 0 {
				n = bytes.LastIndexByte(p[:room], '\n') + 1 // whole lines that fit
			}
			if n == 0 && l.size > 0 {
				if err := l.rotate(); err != nil {
					return err
				}
				continue
			}
			if n == 0 { // one line longer than a file: alone in its file
				if n = bytes.IndexByte(p, '\n') + 1; n == 0 {
					n = len(p)
				}
			}
		}
		if err := l.writeLocked(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// writeLocked writes p to the current file, counting what reached it.
func (l *rotatingLog) writeLocked(p []byte) error {
	n, err := l.f.Write(p)
	l.size += int64(n)
	if err != nil {
		if n > 0 && p[n-1] != '\n' {
			l.torn = true
		}
		return err
	}
	return nil
}

// rotate shifts the rotated files up by one and starts a new FILE. The
// oldest file is removed first when the chain is full, then the contiguous
// run FILE.1 .. FILE.m moves up, oldest first, onto free names, and FILE
// becomes FILE.1. So at any instant at most one index inside the chain is
// missing, which readers rely on (docs/SHIM-PROTOCOL.md), and no rename
// replaces a file: on ext4 a replacing rename makes the kernel start
// writing the renamed file's data back at once (auto_da_alloc), which cost
// about 30 ms per 10 MiB rotation.
func (l *rotatingLog) rotate() error {
	if l.movedAway {
		return l.openCurrent()
	}
	last := l.limits.MaxFiles - 1 // highest index kept
	m := 0
	for m < last && l.exists(l.rotatedName(m+1)) {
		m++
	}
	if m == last && last >= 1 {
		if err := l.removeAt(l.rotatedName(last)); err != nil {
			return err
		}
		m--
	}
	for k := m; k >= 1; k-- {
		if err := l.renameAt(l.rotatedName(k), l.rotatedName(k+1)); err != nil {
			return err
		}
	}
	var err error
	if last >= 1 {
		err = l.renameAt(l.name, l.rotatedName(1))
	} else {
		err = l.removeAt(l.name)
	}
	if err != nil {
		return err
	}
	l.movedAway = true
	return l.openCurrent()
}

// removeAt removes name from the directory; a missing name is no error.
func (l *rotatingLog) removeAt(name string) error {
	if err := unix.Unlinkat(l.dirFD(), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "remove", Path: filepath.Join(l.dir.Name(), name), Err: err}
	}
	return nil
}

// renameAt renames from to the free name to. RENAME_NOREPLACE makes sure
// it is free (something planted there is an error, not replaced); a file
// system without the flag gets a plain rename.
func (l *rotatingLog) renameAt(from, to string) error {
	err := unix.Renameat2(l.dirFD(), from, l.dirFD(), to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Renameat(l.dirFD(), from, l.dirFD(), to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(l.dir.Name(), from), New: filepath.Join(l.dir.Name(), to), Err: err}
	}
	return nil
}

// pruneBeyondLimit removes FILE.<k> for k >= MaxFiles, highest first so
// that the chain never has two missing indices in a row.
func (l *rotatingLog) pruneBeyondLimit() error {
	var found []int
	missing := 0
	for k := l.limits.MaxFiles; k <= maxRotatedIndex && missing < 2; k++ {
		if l.exists(l.rotatedName(k)) {
			found = append(found, k)
			missing = 0
		} else {
			missing++
		}
	}
	for i := len(found) - 1; i >= 0; i-- {
		if err := l.removeAt(l.rotatedName(found[i])); err != nil {
			return err
		}
	}
	return nil
}

// close closes the current file and the directory.
func (l *rotatingLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	if l.dir != nil {
		_ = l.dir.Close()
		l.dir = nil
	}
}
