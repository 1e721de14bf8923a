package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// capShimLog caps the shim's own log, shim.log: the supervisor opened it
// (O_APPEND) as the shim's stdout and stderr before the spawn, so everything
// the shim writes before it has read its spec, or when it dies before that,
// still lands there. Once the spec is known the shim writes its lines
// through the returned rotatingLog, which rotates shim.log like the console
// and moves every new file onto fds 1 and 2 (dup3), so that what the Go
// runtime itself writes to fd 2 (a panic) follows too.
//
// The file's name is learnt from /proc/self/fd/2 and checked against fd 2
// by device and inode: a stderr that is not a regular file (a terminal, a
// pipe, /dev/null) has nothing to cap, and the result is nil; a regular
// file whose name cannot be confirmed is an error, since it could not be
// capped as the spec asks.
func capShimLog(limits messages.LogRotation) (*rotatingLog, error) {
	var st unix.Stat_t
	if err := unix.Fstat(2, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil
	}
	path, err := os.Readlink("/proc/self/fd/2")
	if err != nil {
		return nil, fmt.Errorf("cannot name the shim's stderr: %w", err)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("the shim's stderr has no path (%q)", path)
	}
	l, err := openRotatingLog(path, limits)
	if err != nil {
		return nil, err
	}
	var cur unix.Stat_t
	if err := unix.Fstat(int(l.f.Fd()), &cur); err != nil || cur.Dev != st.Dev || cur.Ino != st.Ino {
		l.close()
		return nil, errors.New("the shim's stderr was renamed or replaced before the shim could cap it")
	}
	l.reopened = func(fd int) error {
		for _, target := range []int{1, 2} {
			if err := unix.Dup3(fd, target, 0); err != nil {
				return fmt.Errorf("dup3 onto fd %d: %w", target, err)
			}
		}
		return nil
	}
	return l, nil
}

// Write writes one or more whole lines (logf's), rotating first when they
// would not fit. It makes rotatingLog the shim's io.Writer for its own log.
func (l *rotatingLog) Write(p []byte) (int, error) {
	if err := l.write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
