package shim

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/pidfd"
)

// childProc is a child the shim started (the guest, or the confining init
// that becomes it): its pid and a pidfd registered with the Go netpoller
// (package pidfd). Waiting for it parks a goroutine in epoll, not an OS
// thread, and a signal sent through the pidfd can never reach a recycled pid.
type childProc struct {
	pid int
	fd  *pidfd.FD
}

// startChild forks and executes path with argv and env (given as they are:
// the caller resolves the path and settles duplicate names) in directory dir
// ("" keeps the shim's), with stdin /dev/null, stdout and stderr as given,
// and extra as fds 3 and up. The child gets parent-death signal SIGKILL and
// stays in the shim's process group; cloneflags adds namespaces.
//
// It uses syscall.ForkExec rather than os/exec: os/exec checks once per
// process whether pidfds work, with a throw-away child of its own, which
// every shim start would pay for; here the pidfd comes straight from
// clone(CLONE_PIDFD). Pdeathsig belongs to the forking thread, which
// lives as long as the shim: Go ends a thread only when a goroutine exits
// while locked to it, which the shim never does.
//
// A failed exec is reported, as os/exec reports it, as an *os.PathError with
// Op "fork/exec" (chdir and exec failures are seen in the child and come back
// through the same path).
func startChild(path string, argv, env []string, dir string, stdout, stderr *os.File, extra []*os.File, cloneflags uintptr) (*childProc, error) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devNull.Close()
	// File.Fd puts a pipe back into blocking mode, which is what the child
	// should see (the console's pipes are non-blocking on the shim's side).
	files := []uintptr{devNull.Fd(), stdout.Fd(), stderr.Fd()}
	for _, f := range extra {
		files = append(files, f.Fd())
	}
	childFD := -1
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Cloneflags: cloneflags, PidFD: &childFD},
	})
	if err != nil {
		return nil, &os.PathError{Op: "fork/exec", Path: path, Err: err}
	}
	if childFD < 0 {
		// A kernel without CLONE_PIDFD (before 5.2): open one. The child is
		// ours and unreaped, so its pid cannot have been recycled.
		if childFD, err = unix.PidfdOpen(pid, 0); err != nil {
			_ = unix.Kill(pid, unix.SIGKILL)
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, 0, nil)
			return nil, fmt.Errorf("pidfd of child %d: %w", pid, err)
		}
	}
	c, err := newChildProc(pid, childFD)
	if err != nil {
		// newChildProc closed childFD; the child is ours and unreaped, so
		// its pid still names it.
		_ = unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		return nil, err
	}
	return c, nil
}

// newChildProc wraps a child's pidfd for the netpoller.
func newChildProc(pid, fd int) (*childProc, error) {
	p, err := pidfd.Wrap(pid, fd)
	if err != nil {
		return nil, fmt.Errorf("child: %w", err) // Wrap's error names the pid
	}
	return &childProc{pid: pid, fd: p}, nil
}

// signal sends sig to the child through its pidfd. A child that has already
// exited is not an error (it may be a zombie, waiting for wait).
func (c *childProc) signal(sig syscall.Signal) error {
	err := c.fd.Signal(sig)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// wait parks the calling goroutine in the netpoller until the child has
// exited, then reaps it and returns its wait status. It closes the pidfd.
func (c *childProc) wait() (syscall.WaitStatus, error) {
	defer c.fd.Close()
	if err := c.fd.Wait(); err != nil {
		return 0, fmt.Errorf("wait for child %d: %w", c.pid, err)
	}
	var ws syscall.WaitStatus
	for {
		// The pidfd reports the exit once the child is a zombie: this
		// returns at once.
		_, err := syscall.Wait4(c.pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for child %d: %w", c.pid, err)
		}
		return ws, nil
	}
}

// kill SIGKILLs the child and reaps it (a failed start).
func (c *childProc) kill() {
	_ = c.signal(syscall.SIGKILL)
	_, _ = c.wait()
}

// dedupEnv keeps the last entry of each name, in the order of those last
// entries, as os/exec does: a later entry replaces an earlier one.
func dedupEnv(env []string) []string {
	seen := make(map[string]bool, len(env))
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		name := env[i]
		if j := strings.IndexByte(name, '='); j >= 0 {
			name = name[:j]
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, env[i])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
