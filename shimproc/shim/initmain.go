package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// planFD is where the init finds its end of the plan socket.
const planFD = 3

// The init's steps that report a failure under a fixed name.
const (
	stepPlan      = "read the plan"
	stepParent    = "parent"
	stepNoNewPriv = "no_new_privs"
	stepSeccomp   = "seccomp"
	stepCloseFDs  = "close_fds"
)

// InitMain runs the confining init: the shim's child, started by
// startConfined in the namespaces the spec asks for. It reads its plan from
// the socket at fd 3, applies it in runc's order — namespaces (set up
// here: /proc, loopback), rlimits, groups, gid, uid, working directory,
// no_new_privs, seccomp last — and executes the guest in its own place. A
// step that fails is reported on the socket and the guest never runs.
//
// The kernel keeps no_new_privs, the parent-death signal and (without
// TSYNC) a seccomp filter per thread, and execve keeps those of the thread
// that calls it: so everything here runs on one locked thread, which is
// also the one that calls execve.
func InitMain() int {
	runtime.LockOSThread() // never unlocked: see above

	var st unix.Stat_t
	if err := unix.Fstat(planFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		fmt.Fprintf(os.Stderr, "boxsup-shim: %s is started by the shim itself, with its plan socket at fd %d\n", InitArg, planFD)
		return ExitUsage
	}
	unix.CloseOnExec(planFD) // the guest must not inherit it
	sock := os.NewFile(planFD, "plan-socket")

	raw, err := io.ReadAll(io.LimitReader(sock, maxSpecBytes+maxInitReport))
	var plan initPlan
	if err == nil {
		err = json.Unmarshal(raw, &plan)
	}
	clear(raw)
	if err == nil && (plan.Path == "" || len(plan.Argv) == 0) {
		err = errors.New("no guest to run")
	}
	if err != nil {
		return reportFailure(sock, initFailure{Step: stepPlan, Err: err.Error()}, ExitUsage)
	}
	if f := confine(&plan, sock); f != nil {
		return reportFailure(sock, *f, ExitUsage)
	}
	_, _ = sock.Write([]byte{markExec})
	err = syscall.Exec(plan.Path, plan.Argv, plan.Env)
	return reportFailure(sock, initFailure{Step: "exec " + plan.Path, Err: errnoText(err), Exec: true}, ExitExecFailed)
}

// reportFailure writes f to the shim and returns code. A write that fails
// leaves the shim with an init that ended before the guest, which it
// reports as a start failure too.
func reportFailure(sock *os.File, f initFailure, code int) int {
	if b, err := json.Marshal(f); err == nil {
		_, _ = sock.Write(b)
	}
	return code
}

// confine applies the plan, in order, and returns the first failure.
func confine(plan *initPlan, sock *os.File) *initFailure {
	if plan.MountProc {
		if err := mountOwnProc(); err != nil {
			return &initFailure{Step: "new_pid_ns: mount /proc", Err: errnoText(err)}
		}
	}
	if plan.Loopback {
		if err := bringLoopbackUp(); err != nil {
			return &initFailure{Step: "disable_network: bring lo up", Err: errnoText(err)}
		}
	}
	for _, l := range plan.Rlimits {
		lim := unix.Rlimit{Cur: l.Value, Max: l.Value}
		// Prlimit, not Setrlimit: it tells the Go runtime not to put its
		// own NOFILE limit back at execve.
		if err := unix.Prlimit(0, l.Resource, &lim, nil); err != nil {
			return &initFailure{Step: fmt.Sprintf("rlimit %s=%d", l.Name, l.Value), Err: errnoText(err)}
		}
	}
	if plan.SetIdentity {
		if f := setIdentity(plan); f != nil {
			return f
		}
	}
	// Changing the identity cleared the parent-death signal (the kernel
	// does so on any credential change): set it again, then make sure the
	// shim did not die in between, which would have gone unnoticed.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return &initFailure{Step: stepParent, Err: "set the parent-death signal: " + errnoText(err)}
	}
	if shimGone(sock) {
		return &initFailure{Step: stepParent, Err: "the shim is gone"}
	}
	if plan.Dir != "" {
		// As the guest, so that a directory it may not enter is refused.
		if err := unix.Chdir(plan.Dir); err != nil {
			return &initFailure{Step: "chdir " + plan.Dir, Err: errnoText(err), Exec: true}
		}
	}
	if err := closeInheritedFDs(); err != nil {
		return &initFailure{Step: stepCloseFDs, Err: err.Error()}
	}
	// The kernel installs a seccomp filter only with no_new_privs or
	// CAP_SYS_ADMIN; a guest that is not root has no such capability.
	if plan.NoNewPrivs || (plan.Seccomp && unix.Geteuid() != 0) {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return &initFailure{Step: stepNoNewPriv, Err: errnoText(err)}
		}
	}
	if plan.Seccomp {
		if err := loadSeccomp(); err != nil {
			return &initFailure{Step: stepSeccomp, Err: err.Error()}
		}
	}
	return nil
}

// setIdentity sets the supplementary groups, the gid and the uid, in this
// order (a process that gave up root can change none of them). Go's
// syscall package applies each to every thread of the process.
func setIdentity(plan *initPlan) *initFailure {
	groups := make([]int, len(plan.Groups))
	for i, g := range plan.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return &initFailure{Step: fmt.Sprintf("setgroups %v", plan.Groups), Err: errnoText(err)}
	}
	if err := syscall.Setgid(int(plan.GID)); err != nil {
		return &initFailure{Step: fmt.Sprintf("setgid %d", plan.GID), Err: errnoText(err)}
	}
	if err := syscall.Setuid(int(plan.UID)); err != nil {
		return &initFailure{Step: fmt.Sprintf("setuid %d", plan.UID), Err: errnoText(err)}
	}
	return nil
}

// shimGone reports whether the shim closed its end of the plan socket,
// which it holds open until the guest is running: it is dead. (It shut
// its writing side down after the plan, which poll reports as RDHUP, not
// HUP.)
func shimGone(sock *os.File) bool {
	fds := []unix.PollFd{{Fd: int32(sock.Fd()), Events: 0}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
}

// errnoText is an error's text for a report: the errno's own words.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}
