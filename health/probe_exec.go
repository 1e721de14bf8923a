package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/guestenv"
	"github.com/boxsup/boxsup/messages"
)

// outputGrace is how long the output of an exec probe is still read after
// its process group has ended: a process that left the group (setsid) may
// hold the pipe open for as long as it lives.
const outputGrace = 100 * time.Millisecond

// probeExec runs the check's command inside the box, as Docker's exec
// checks run inside the container:
//
//   - in the generation's cgroup (CLONE_INTO_CGROUP, and the v1 mirrors of
//     its limits on a hybrid host), so that it is limited and killed with
//     the box;
//   - in the guest's network and PID namespaces when it has its own, and
//     under the guest's root (chroot into /proc/GUEST/root: a process with
//     threads cannot join a mount namespace, but it can walk the guest's
//     mounts), so that it sees the /proc and the loopback the guest sees;
//   - as the guest's uid, gid and groups, with no_new_privs when the guest
//     has it;
//   - with the guest's environment, secrets included, and its working
//     directory ("/" when the spec sets none);
//   - in a process group of its own, which is killed when the probe times
//     out and again when its leader exits (a check leaves nothing behind
//     in its group);
//   - with stdin from /dev/null, stdout and stderr into one pipe, of which
//     the first MaxHealthOutput bytes (plus room to scrub a secret that
//     straddles the bound) are kept and the rest is read and dropped.
//
// What it does not take from the guest: its rlimits (max_open_files,
// max_file_size, and max_processes' RLIMIT_NPROC; the box's pids limit on
// its cgroup does apply) and its seccomp filter (Supported refuses an exec
// check for a box that has one).
//
// The namespaces, the v1 cgroups and no_new_privs are set on a disposable
// thread that forks the probe and then waits for it.
func probeExec(ctx context.Context, c *messages.HealthCheck, t Target) outcome {
	spec := t.Spec
	if spec == nil {
		return errored(errors.New("the target has no spec"))
	}
	sec := &spec.Security
	// The guest's environment as the reference shim builds it, without
	// BOXSUP_READY_SOCKET (a probe has no business signalling readiness);
	// the program is looked up as the shim looks up the guest's. The host's
	// files are what it sees: a guest's mount namespace differs from the
	// host's by its /proc only.
	env := guestenv.Build(spec, false)
	path, err := guestenv.LookPath(c.Exec[0], env)
	if err != nil {
		o := failed("%v", err)
		o.exitCode = -1
		return o
	}
	want := guestWants{net: spec.DisableNetwork, pid: sec.NewPIDNS, mount: sec.NewPIDNS}
	var g *guestProc
	if want.net || want.pid {
		if g, err = findGuest(t.Shim, want); err != nil {
			return errored(err)
		}
		defer g.close()
	}
	cg, err := openProbeCgroups(t.Cgroup)
	if err != nil {
		return errored(err)
	}
	defer cg.close()
	r, w, err := os.Pipe()
	if err != nil {
		return errored(err)
	}
	defer r.Close()

	dir := spec.GuestEntrypoint.WorkDir
	if dir == "" {
		dir = "/"
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Credential: credentialFor(sec)}
	if cg.v2 != nil {
		attr.UseCgroupFD = true
		attr.CgroupFD = int(cg.v2.Fd())
	}
	if g != nil && g.root != nil {
		// In the child, before its exec: its own fd table still holds
		// the guest's root, close-on-exec or not.
		attr.Chroot = "/proc/self/fd/" + strconv.Itoa(int(g.root.Fd()))
	}
	if !want.pid {
		// The probe dies with the thread that forked it, which lives until
		// the probe ends (a supervisor that dies leaves no probe behind).
		// Not in a PID namespace joined by setns: the child's parent is
		// outside it, so Go's check of the parent would kill the child at
		// once.
		attr.Pdeathsig = syscall.SIGKILL
	}
	cmd := &exec.Cmd{Path: path, Args: c.Exec, Env: env, Dir: dir, Stdout: w, Stderr: w, SysProcAttr: attr}
	setup := threadSetup{cgroups: cg, guest: g, noNewPrivs: sec.NoNewPrivs || sec.UID != 0}
	run := startExec(cmd, setup)
	err = <-run.started
	_ = w.Close()
	if err != nil {
		return startFailed(err)
	}
	captured := capture(r, captureLimit(spec))

	var d execDone
	timedOut := false
	select {
	case d = <-run.done:
	case <-ctx.Done():
		run.killGroup()
		d = <-run.done
		// Unless it exited by itself in the meantime.
		timedOut = d.state == nil || !d.state.Exited()
	}
	_ = r.SetReadDeadline(time.Now().Add(outputGrace))
	out := <-captured

	switch {
	case d.err != nil && d.state == nil:
		return errored(fmt.Errorf("waiting for the probe: %w", d.err))
	case timedOut:
		return outcome{outcome: messages.HealthFail, exitCode: -1, timedOut: true, output: out}
	case d.state.ExitCode() == 0:
		return passed(out)
	case d.state.ExitCode() > 0:
		o := failed("exit status %d", d.state.ExitCode())
		o.exitCode, o.output = d.state.ExitCode(), out
		return o
	default:
		o := failed("%v", d.state) // "signal: killed"
		o.exitCode, o.output = -1, out
		return o
	}
}

// threadSetup is what the forking thread takes on before the fork, for its
// child to inherit: the cgroup v1 mirrors, no_new_privs and the guest's
// namespaces.
type threadSetup struct {
	cgroups    *probeCgroups
	guest      *guestProc
	noNewPrivs bool
}

func (s threadSetup) apply() error {
	if err := s.cgroups.joinV1(); err != nil {
		return err
	}
	if s.noNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if s.guest != nil && s.guest.netNS != nil {
		if err := unix.Setns(int(s.guest.netNS.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("joining the guest's network namespace: %w", err)
		}
	}
	if s.guest != nil && s.guest.pidNS != nil {
		if err := unix.Setns(int(s.guest.pidNS.Fd()), unix.CLONE_NEWPID); err != nil {
			return fmt.Errorf("joining the guest's PID namespace: %w", err)
		}
	}
	return nil
}

// execRun is a probe process started by startExec.
type execRun struct {
	started chan error    // the outcome of the setup and the fork
	done    chan execDone // after the leader has been reaped

	mu     sync.Mutex
	pid    int
	reaped bool
}

type execDone struct {
	state *os.ProcessState
	err   error
}

// startExec starts cmd from a disposable thread (onDisposableThread) that
// applies setup first, and waits for it there (the thread's end is what
// Pdeathsig watches). Once the leader has exited, its
// group is killed while the leader's zombie still holds the group's id, and
// only then is the leader reaped: a group id is never signalled after it
// may have been reused.
func startExec(cmd *exec.Cmd, setup threadSetup) *execRun {
	run := &execRun{started: make(chan error, 1), done: make(chan execDone, 1)}
	onDisposableThread(func() {
		if err := setup.apply(); err != nil {
			run.started <- errSetup{err}
			return
		}
		if err := cmd.Start(); err != nil {
			run.started <- err
			return
		}
		pid := cmd.Process.Pid
		run.mu.Lock()
		run.pid = pid
		run.mu.Unlock()
		run.started <- nil

		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		run.killGroup()
		run.mu.Lock()
		run.reaped = true
		run.mu.Unlock()
		err := cmd.Wait()
		run.done <- execDone{state: cmd.ProcessState, err: err}
	})
	return run
}

// killGroup SIGKILLs the probe's process group, unless its leader has been
// reaped (its id may then be reused).
func (r *execRun) killGroup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid > 0 && !r.reaped {
		_ = unix.Kill(-r.pid, unix.SIGKILL)
	}
}

// errSetup is a failure of the forking thread's setup: the supervisor's
// side, never a verdict on the box.
type errSetup struct{ error }

func (e errSetup) Unwrap() error { return e.error }

// startFailed judges a probe that did not start: a command that cannot be
// executed, or a working directory the guest cannot enter, is a failure
// (the same command would fail in the guest); a setup or fork that failed
// for want of resources or rights is an error.
func startFailed(err error) outcome {
	var setup errSetup
	if errors.As(err, &setup) {
		return errored(setup.error)
	}
	for _, e := range []syscall.Errno{syscall.ENOENT, syscall.EACCES, syscall.ENOEXEC, syscall.ENOTDIR,
		syscall.ELOOP, syscall.EISDIR, syscall.ETXTBSY, syscall.ENAMETOOLONG} {
		if errors.Is(err, e) {
			o := failed("%v", err)
			o.exitCode = -1
			return o
		}
	}
	return errored(err)
}

// capture reads r until EOF or its deadline, keeping the first limit bytes
// and dropping the rest, so that a probe never blocks on a full pipe.
func capture(r *os.File, limit int) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		var kept []byte
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			if room := limit - len(kept); room > 0 {
				kept = append(kept, buf[:min(n, room)]...)
			}
			if err != nil {
				break
			}
		}
		ch <- kept
	}()
	return ch
}

// credentialFor is the guest's identity as the reference shim applies it:
// setting any of uid, gid and groups sets all three (uid and gid default to
// the supervisor's, and the groups are exactly the spec's, none when
// empty); nil when the spec sets none.
func credentialFor(sec *messages.SecurityOptions) *syscall.Credential {
	if sec.UID == 0 && sec.GID == 0 && len(sec.Groups) == 0 {
		return nil
	}
	cred := &syscall.Credential{Uid: sec.UID, Gid: sec.GID, Groups: sec.Groups}
	if sec.UID == 0 {
		cred.Uid = uint32(os.Getuid())
	}
	if sec.GID == 0 {
		cred.Gid = uint32(os.Getgid())
	}
	if cred.Groups == nil {
		cred.Groups = []uint32{}
	}
	return cred
}
