package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rawShim is the floor's way of running a box: the same shim binary started
// with plain os/exec, the spec on stdin, a ready pipe on fd 3 and a
// keepalive pipe on fd 4, stdout and stderr appended to shim.log, its own
// process group, and the environment and cgroup shimproc would give it
// (rawshim_env.go) — what shimproc does, minus everything boxsup adds (box
// directory and records, limits, identity, actors). Exit is watched through
// a pidfd in the Go netpoller.
type rawShim struct {
	pid       int
	pidfd     *os.File
	conn      syscall.RawConn
	ready     *os.File // read end of the ready pipe; nil once read
	keepalive *os.File // write end of the keepalive pipe
	cgroup    string   // the shim's own cgroup, removed once reaped; "" without one
	reaped    bool
}

// rawShimDir prepares a directory for one raw shim and returns the spec
// JSON for it (console and exit file inside dir). Done outside any timing.
func rawShimDir(dir string, spec boxSpec) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return spec.rawJSON(filepath.Base(dir), dir)
}

// readyRawShim prepares dir, spawns a raw shim there and waits for its ready
// byte. It returns the shim, the time from spawn to ready, and release, which
// kills the shim and removes dir. On an error after dir was prepared, dir is
// removed and no shim is left.
func readyRawShim(binary, dir string, spec boxSpec) (rs *rawShim, took time.Duration, release func(), err error) {
	js, err := rawShimDir(dir, spec)
	if err != nil {
		return nil, 0, nil, err
	}
	t0 := time.Now()
	rs, err = startRawShim(binary, dir, js)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, 0, nil, err
	}
	release = func() {
		rs.kill()
		_ = os.RemoveAll(dir)
	}
	if err := rs.waitReady(opTimeout); err != nil {
		release()
		return nil, 0, nil, err
	}
	return rs, time.Since(t0), release, nil
}

// startRawShim spawns the shim in dir with specJSON on stdin. It returns
// once the process runs and the spec is written; waitReady then waits for
// the ready byte.
func startRawShim(binary, dir string, specJSON []byte) (*rawShim, error) {
	log, err := os.OpenFile(filepath.Join(dir, "shim.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer stdinR.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		stdinW.Close()
		return nil, err
	}
	defer readyW.Close()
	keepR, keepW, err := os.Pipe()
	if err != nil {
		stdinW.Close()
		readyR.Close()
		return nil, err
	}
	defer keepR.Close()

	cgroup, cgroupDir, err := newRawCgroup()
	if err != nil {
		stdinW.Close()
		readyR.Close()
		keepW.Close()
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:        binary,
		Args:        []string{binary, "--box-id", filepath.Base(dir)},
		Dir:         dir,
		Env:         rawShimEnv(cgroup),
		Stdin:       stdinR,
		Stdout:      log,
		Stderr:      log,
		ExtraFiles:  []*os.File{readyW, keepR},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if cgroupDir != nil {
		defer cgroupDir.Close()
		intoCgroup(cmd.SysProcAttr, cgroupDir)
	}
	if err := cmd.Start(); err != nil {
		stdinW.Close()
		readyR.Close()
		keepW.Close()
		if cgroup != "" {
			_ = removeCgroupDir(cgroup)
		}
		return nil, err
	}
	r := &rawShim{pid: cmd.Process.Pid, ready: readyR, keepalive: keepW, cgroup: cgroup}
	fd, err := unix.PidfdOpen(r.pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		stdinW.Close()
		r.closeFiles()
		if cgroup != "" {
			_ = removeCgroupDir(cgroup)
		}
		return nil, fmt.Errorf("pidfd_open %d: %w", r.pid, err)
	}
	_ = cmd.Process.Release() // the pidfd and wait4 are the only handles
	r.pidfd = os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(r.pid))
	if r.conn, err = r.pidfd.SyscallConn(); err != nil {
		stdinW.Close()
		r.kill()
		return nil, err
	}
	_, werr := stdinW.Write(specJSON)
	cerr := stdinW.Close()
	if err := errors.Join(werr, cerr); err != nil {
		r.kill()
		return nil, fmt.Errorf("writing the spec: %w", err)
	}
	return r, nil
}

// waitReady reads the ready byte, or fails at the deadline.
func (r *rawShim) waitReady(timeout time.Duration) error {
	defer func() {
		_ = r.ready.Close()
		r.ready = nil
	}()
	if err := r.ready.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var b [1]byte
	n, err := r.ready.Read(b[:])
	if n == 1 {
		return nil
	}
	return fmt.Errorf("raw shim %d: no ready byte: %v", r.pid, err)
}

// signal sends sig to the shim through its pidfd.
func (r *rawShim) signal(sig syscall.Signal) error {
	var serr error
	if err := r.conn.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return err
	}
	return serr
}

// killGroup sends SIGKILL to the shim's process group (shim and guest), as
// a supervisor does to a box that ignored SIGTERM.
func (r *rawShim) killGroup() error { return unix.Kill(-r.pid, unix.SIGKILL) }

// waitExit blocks until the pidfd reports the exit (the goroutine parks in
// the netpoller) or the timeout passes.
func (r *rawShim) waitExit(timeout time.Duration) error {
	if err := r.pidfd.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var pollErr error
	err := r.conn.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil && !errors.Is(err, unix.EINTR) {
			pollErr = err
			return true
		}
		return n > 0
	})
	if err != nil {
		return fmt.Errorf("raw shim %d: waiting for exit: %w", r.pid, err)
	}
	return pollErr
}

// tryReap reaps the shim if it has exited (wait4 WNOHANG), as boxlite's
// try_wait does. It reports whether the shim was reaped.
func (r *rawShim) tryReap() bool {
	if r.reaped {
		return true
	}
	var ws unix.WaitStatus
	pid, err := unix.Wait4(r.pid, &ws, unix.WNOHANG, nil)
	if pid == r.pid || errors.Is(err, unix.ECHILD) {
		r.reaped = true
	}
	return r.reaped
}

// reap waits for the (exited or killed) shim and releases everything.
func (r *rawShim) reap() {
	if !r.reaped {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(r.pid, &ws, 0, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		r.reaped = true
	}
	r.closeFiles()
}

// kill ends the shim's group, reaps it and closes everything; for error
// paths and cleanup.
//
// It also removes the shim's cgroup, which a timed stop leaves in place:
// boxsup removes a stopped box's cgroup after its reply, off the timed path.
func (r *rawShim) kill() {
	if !r.reaped {
		_ = r.killGroup()
	}
	r.reap()
	if r.cgroup != "" {
		_ = removeCgroupDir(r.cgroup) // a leftover is reported by the runner's cleanup
		r.cgroup = ""
	}
}

func (r *rawShim) closeFiles() {
	for _, f := range []**os.File{&r.ready, &r.keepalive, &r.pidfd} {
		if *f != nil {
			_ = (*f).Close()
			*f = nil
		}
	}
}

// boxliteStop re-creates boxlite's graceful stop of a child it owns
// (as boxlite implements it): SIGTERM, then try_wait (waitpid WNOHANG) every
// 50 ms for up to 2 s, then SIGKILL and wait. It returns the time from the
// SIGTERM until the exit was noticed.
func (r *rawShim) boxliteStop() (time.Duration, error) {
	const poll, grace = 50 * time.Millisecond, 2 * time.Second
	began := time.Now()
	if err := unix.Kill(r.pid, unix.SIGTERM); err != nil {
		return 0, err
	}
	for time.Since(began) < grace {
		if r.tryReap() {
			took := time.Since(began)
			r.closeFiles()
			return took, nil
		}
		time.Sleep(poll)
	}
	_ = unix.Kill(r.pid, unix.SIGKILL)
	r.reap()
	return time.Since(began), nil
}
