package shim

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The inherited descriptors of the shim contract.
const (
	readyFD     = 3 // write end of the ready pipe
	keepaliveFD = 4 // read end of the keepalive pipe (absent when detached)
)

// inheritedFD describes what the shim found at fd 3 or 4 at start-up.
type inheritedFD struct {
	fd      int
	present bool  // a pipe or socket is there: the supervisor's
	socket  bool  // present, and a socket (restart_in_place needs one at fd 3)
	err     error // present, but open in the wrong direction
}

// inspectInheritedFDs looks at fds 3 and 4 and marks those the supervisor
// passed close-on-exec, so that neither leaks into the guest: a leaked copy
// of the ready pipe's write end would hide the shim's death from the
// supervisor (no EOF until the guest exits too).
//
// Only a pipe or a socket counts as the supervisor's descriptor. Anything
// else at 3 or 4 is not one: when the supervisor passed no fd 3 (or 4), the
// number is free and the Go runtime may take it before Main runs (since Go
// 1.25 it can keep the cgroup's cpu.cfs_quota_us open, for example). Such a
// descriptor is left strictly alone. Main calls this before opening
// anything itself, so no descriptor of the shim's own can be mistaken
// either.
func inspectInheritedFDs() (ready, keepalive inheritedFD) {
	ready, keepalive = inspectFD(readyFD, unix.O_WRONLY), inspectFD(keepaliveFD, unix.O_RDONLY)
	// Whatever else a careless caller left open (fd 5 and up) must not reach
	// the guest either. Best effort: kernels before 5.11 lack the flag, and
	// the Go runtime's own descriptors there are close-on-exec already.
	_ = unix.CloseRange(keepaliveFD+1, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	return ready, keepalive
}

// inspectFD reports whether fd is a pipe or socket and, if so, marks it
// close-on-exec and checks that it is open in the wanted direction
// (unix.O_WRONLY or unix.O_RDONLY).
func inspectFD(fd int, direction int) inheritedFD {
	res := inheritedFD{fd: fd}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return res // EBADF: not open
	}
	kind := st.Mode & unix.S_IFMT
	if kind != unix.S_IFIFO && kind != unix.S_IFSOCK {
		return res // not the supervisor's (see inspectInheritedFDs)
	}
	res.present = true
	res.socket = kind == unix.S_IFSOCK
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
	}
	if err != nil {
		res.err = fmt.Errorf("fd %d: set close-on-exec: %w", fd, err)
		return res
	}
	status, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		res.err = fmt.Errorf("fd %d: fcntl(F_GETFL): %w", fd, err)
		return res
	}
	if mode := status & unix.O_ACCMODE; mode != direction && mode != unix.O_RDWR {
		want := "writing"
		if direction == unix.O_RDONLY {
			want = "reading"
		}
		res.err = fmt.Errorf("fd %d is not open for %s", fd, want)
	}
	return res
}

// closeInheritedFDs marks every descriptor from 3 up close-on-exec, so that
// a guest started next inherits 0, 1 and 2 only. Unlike the best-effort
// marking at start-up it is checked: where close_range lacks the flag
// (kernels before 5.11) it walks /proc/self/fd, and it fails rather than
// leave a descriptor behind.
func closeInheritedFDs() error {
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			// EBADF: the directory's own descriptor, closed by now.
			return fmt.Errorf("fd %d: set close-on-exec: %w", fd, err)
		}
	}
	return nil
}
