package shimproc

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
)

// childFiles are the shim's ends of its stdio and pipes. The parent closes
// them right after the spawn: holding one would keep a pipe from reporting
// EOF and costs an fd per box (every open fd slows every later spawn).
type childFiles struct {
	stdin     *os.File // read end of the spec pipe
	log       *os.File // shim.log, O_APPEND
	ready     *os.File // write end of the ready pipe (fd 3), or the shim's end of the restart line
	keepalive *os.File // read end of the keepalive pipe (fd 4), nil when detached
	cgroup    *os.File // the box's cgroup directory, for CLONE_INTO_CGROUP
}

// parentFiles are the supervisor's ends. All are O_CLOEXEC (os.Pipe and
// os.OpenFile set it), so no other child ever inherits them.
type parentFiles struct {
	stdin     *os.File // write end of the spec pipe, closed once written
	ready     *os.File // read end of the ready pipe, kept until ready (or, a socket, for the restart line)
	keepalive *os.File // write end of the keepalive pipe, nil when detached
}

// open creates shim.log and the pipes, filling c and returning the parent's
// ends. With restartLine, fd 3 is one end of a socket pair rather than a
// pipe: the ready byte comes on it all the same, and then the shim's
// questions about restarting its guest in place (docs/SHIM-PROTOCOL.md §16).
// On error everything opened so far is closed again (c's other members are
// closed by the caller's deferred c.close).
func (c *childFiles) open(shimLogPath string, keepalive, restartLine bool) (*parentFiles, error) {
	var err error
	// Never through a planted link or into another user's file (layout checks).
	if c.log, err = layout.OpenAppend(shimLogPath, 0o600); err != nil {
		return nil, fmt.Errorf("opening the runner log: %w", err)
	}
	p := &parentFiles{}
	if c.stdin, p.stdin, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("creating the spec pipe: %w", err)
	}
	if restartLine {
		p.ready, c.ready, err = socketPair()
	} else {
		p.ready, c.ready, err = os.Pipe()
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("creating the ready pipe: %w", err)
	}
	if keepalive {
		if c.keepalive, p.keepalive, err = os.Pipe(); err != nil {
			p.close()
			return nil, fmt.Errorf("creating the keepalive pipe: %w", err)
		}
	}
	return p, nil
}

// socketPair returns the two ends of a stream socket pair: the first
// non-blocking (in the netpoller, the supervisor's), both close-on-exec.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		_ = unix.Close(fds[0])
		_ = unix.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "restart-line"), os.NewFile(uintptr(fds[1]), "restart-line-shim"), nil
}

// extraFiles returns fds 3 (ready) and, when attached, 4 (keepalive).
func (c *childFiles) extraFiles() []*os.File {
	if c.keepalive == nil {
		return []*os.File{c.ready}
	}
	return []*os.File{c.ready, c.keepalive}
}

// close closes every child end still open; it is safe to call twice.
func (c *childFiles) close() {
	for _, f := range []**os.File{&c.stdin, &c.log, &c.ready, &c.keepalive, &c.cgroup} {
		if *f != nil {
			_ = (*f).Close()
			*f = nil
		}
	}
}

// close closes every parent end still open; it is safe to call twice.
func (p *parentFiles) close() {
	for _, f := range []**os.File{&p.stdin, &p.ready, &p.keepalive} {
		if *f != nil {
			_ = (*f).Close()
			*f = nil
		}
	}
}
