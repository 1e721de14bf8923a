package layout

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// Lock is the exclusive hold on a home: one supervisor per home at a time.
// It is an flock on root/lock, which belongs to the open file description:
// a second Lock, even from the same process, conflicts with it, and the kernel
// drops it when the holder dies, so a crash never leaves a stale lock. The
// file is opened close-on-exec, so spawned shims never inherit (and never
// prolong) the hold.
type Lock struct {
	mu   sync.Mutex
	f    *os.File // nil once released
	path string
}

// Lock takes the home lock without waiting for a holder and writes this
// process's pid into the lock file for the benefit of the next contender.
// When another holder has it, the error is messages.ErrHomeLocked naming the
// holder's pid. A lock whose file names no holder (one just released, or just
// taken) is tried again for up to lockReleaseGrace first.
//
// The lock file is opened relative to the checked home directory without
// following a symbolic link, and it must be a regular file with one link,
// owned by this user or root (messages.ErrUnsafeHome otherwise): it is
// written and truncated, so a planted link or hard link must never lead
// that write elsewhere. Its mode is corrected only when it is this user's
// own file.
func (h *Home) Lock() (*Lock, error) {
	path := h.LockPath()
	f, err := h.openLockFile()
	if err != nil {
		return nil, err
	}
	if err := flockReleasedGrace(f); err != nil {
		holder := describeHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, messages.Errorf(messages.ErrHomeLocked, "%s: %s", path, holder)
		}
		return nil, fmt.Errorf("lock home %s: %w", path, err)
	}
	// The lock file holds no secret, but a umask could have left it readable
	// by others or, worse, not writable by us; set the mode we document.
	if st, err := fstat(f); err == nil && st.Mode&0o777 != 0o600 && st.Uid == uint32(os.Geteuid()) {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock home %s: %w", path, err)
		}
	}
	if err := writeHolder(f, os.Getpid()); err != nil && !diskFull(err) {
		f.Close()
		return nil, fmt.Errorf("lock home %s: record holder pid: %w", path, err)
	}
	// On a full disk the pid is not recorded (the next contender hears of
	// an unknown holder), but the lock is held: stopping boxes, which frees
	// space, must not need space.
	return &Lock{f: f, path: path}, nil
}

// openLockFile opens (creating) root/lock in the checked home directory.
func (h *Home) openLockFile() (*os.File, error) {
	root, err := openDirPath(h.Root)
	if err != nil {
		return nil, fmt.Errorf("lock home: %w", err)
	}
	defer root.Close()
	if err := checkOpenDir(root); err != nil {
		return nil, err
	}
	f, err := openAt(int(root.Fd()), root.Name(), lockFileName, unix.O_RDWR|unix.O_CREAT|unix.O_NONBLOCK, 0o600)
	if err != nil {
		var me *messages.Error
		if errors.As(err, &me) {
			return nil, err
		}
		return nil, fmt.Errorf("lock home: %w", err)
	}
	st, err := fstat(f)
	if err == nil {
		err = checkFileStat(f.Name(), st, fileRule{forbidden: 0o022, what: "group or others may write it"})
	}
	if err == nil && st.Nlink != 1 {
		err = messages.Errorf(messages.ErrUnsafeHome,
			"%s has %d hard links: boxsup writes only to a file of its own; fix: remove it", f.Name(), st.Nlink)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release clears the recorded pid and drops the lock. Calling it again does
// nothing and returns nil.
func (l *Lock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Clear the pid while still holding the lock, so nobody reads a stale one.
	truncErr := f.Truncate(0)
	closeErr := f.Close() // closing the only descriptor releases the flock
	if err := errors.Join(truncErr, closeErr); err != nil {
		return fmt.Errorf("release home lock %s: %w", l.path, err)
	}
	return nil
}

// A lock released by its holder can stay held for a moment: flock belongs
// to the open file description, and a process that forked just before the
// release (a shim being spawned by any goroutine of the releasing process,
// or of an embedder) holds a copy of the descriptor until its exec closes
// it. A holder that released truncates the file first, and so does one that
// has not yet written its pid; so while the file names no holder, the lock
// is tried again for up to lockReleaseGrace. A holder that names itself is
// reported at once.
const (
	lockReleaseGrace = 250 * time.Millisecond
	lockRetryEvery   = 5 * time.Millisecond
)

// lockRetried, when set (tests), is called after each failed attempt that
// will be retried.
var lockRetried func(attempt int)

// flockReleasedGrace takes f's lock without blocking, retrying while the
// file names no holder (see above).
func flockReleasedGrace(f *os.File) error {
	deadline := time.Now().Add(lockReleaseGrace)
	for attempt := 1; ; attempt++ {
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || describeHolder(f) != unknownHolder || time.Now().After(deadline) {
			return err
		}
		if lockRetried != nil {
			lockRetried(attempt)
		}
		time.Sleep(lockRetryEvery)
	}
}

// flock retries flock(2) when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// diskFull reports whether err says the filesystem or the user's quota has
// no space left.
func diskFull(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}

// writeHolder replaces the file's content with "PID\n".
func writeHolder(f *os.File, pid int) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
	return err
}

// describeHolder reads the holder's pid from the open lock file for an
// error message. The holder may be between taking the lock and writing its
// pid, so an empty file is normal.
func describeHolder(f *os.File) string {
	var b [32]byte
	n, _ := f.ReadAt(b[:], 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
		return "held by pid " + strconv.Itoa(pid)
	}
	return unknownHolder
}

// unknownHolder is describeHolder's text for a lock file that names nobody.
const unknownHolder = "held by another process (pid unknown)"
