package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// InitArg runs the shim as the confining init (InitMain): the child that the
// shim starts when a spec asks for confinement, which applies it and then
// executes the guest in its place. It is the reference shim's own business,
// not part of the shim contract.
const InitArg = "--confine-init"

// initPlan is what the shim hands its init over the plan socket: the guest
// to execute and every setting to apply first. It holds the guest's
// environment, secrets included, so it travels only on the socket, never
// on a command line or in an environment.
type initPlan struct {
	Path string   `json:"path"` // resolved executable
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir,omitempty"`

	MountProc bool `json:"mount_proc,omitempty"` // new PID and mount namespaces: a /proc of their own
	Loopback  bool `json:"loopback,omitempty"`   // new network namespace: bring lo up

	Rlimits []rlimitSetting `json:"rlimits,omitempty"`

	SetIdentity bool     `json:"set_identity,omitempty"` // setgroups, setgid, setuid
	UID         uint32   `json:"uid,omitempty"`
	GID         uint32   `json:"gid,omitempty"`
	Groups      []uint32 `json:"groups,omitempty"`

	NoNewPrivs bool `json:"no_new_privs,omitempty"`
	Seccomp    bool `json:"seccomp,omitempty"`
}

// rlimitSetting is one resource limit; soft and hard are both Value.
type rlimitSetting struct {
	Name     string `json:"name"` // for error messages: "nofile"
	Resource int    `json:"resource"`
	Value    uint64 `json:"value"`
}

// needsInit reports whether the spec asks for anything that must be applied
// between the guest's fork and its exec, which Go's os/exec cannot do: such
// a guest starts through the init. Everything else keeps the plain, faster
// start. sanitize_env and close_fds need no init (the shim applies them to
// the plain start too).
func needsInit(spec *messages.InstanceSpec) bool {
	sec := &spec.Security
	return sec.UID != 0 || sec.GID != 0 || len(sec.Groups) > 0 ||
		sec.MaxOpenFiles != 0 || sec.MaxFileSize != 0 || sec.MaxProcesses != 0 ||
		sec.NoNewPrivs || sec.Seccomp || sec.NewPIDNS || spec.DisableNetwork
}

// planFor builds the init's plan for the guest's launch (from
// guestCommand) and returns it with the namespaces the init must be
// created in.
func planFor(spec *messages.InstanceSpec, g *guestLaunch) (initPlan, uintptr) {
	sec := &spec.Security
	plan := initPlan{
		Path:      g.path,
		Argv:      g.argv,
		Env:       g.env,
		Dir:       g.dir,
		MountProc: sec.NewPIDNS,
		Loopback:  spec.DisableNetwork,
		// A guest given another uid always runs with no_new_privs, so that
		// no set-user-ID program can give it back what setuid took.
		NoNewPrivs: sec.NoNewPrivs || sec.UID != 0,
		Seccomp:    sec.Seccomp,
	}
	for _, l := range []rlimitSetting{
		{"nofile", unix.RLIMIT_NOFILE, sec.MaxOpenFiles},
		{"fsize", unix.RLIMIT_FSIZE, sec.MaxFileSize},
		{"nproc", unix.RLIMIT_NPROC, sec.MaxProcesses},
	} {
		if l.Value != 0 {
			plan.Rlimits = append(plan.Rlimits, l)
		}
	}
	if sec.UID != 0 || sec.GID != 0 || len(sec.Groups) > 0 {
		// Setting any part of the identity sets all of it: a guest given a
		// uid does not keep the supervisor's supplementary groups.
		plan.SetIdentity = true
		plan.UID, plan.GID = sec.UID, sec.GID
		if sec.UID == 0 {
			plan.UID = uint32(os.Getuid())
		}
		if sec.GID == 0 {
			plan.GID = uint32(os.Getgid())
		}
		plan.Groups = sec.Groups
	}
	var flags uintptr
	if sec.NewPIDNS {
		flags |= unix.CLONE_NEWPID | unix.CLONE_NEWNS
	}
	if spec.DisableNetwork {
		flags |= unix.CLONE_NEWNET
	}
	return plan, flags
}

// startError is a guest start that failed: the exit code and the reason
// for the exit record (ExitUsage with "setup failed: ...", or
// ExitExecFailed with "exec failed: ...").
type startError struct {
	code   int
	reason string
}

func (e *startError) Error() string { return e.reason }

func setupFailed(format string, args ...any) *startError {
	return &startError{code: ExitUsage, reason: "setup failed: " + fmt.Sprintf(format, args...)}
}

func execFailed(err error) *startError {
	return &startError{code: ExitExecFailed, reason: "exec failed: " + err.Error()}
}

// workDirCause names the work directory when it is why the fork/exec
// failed: the child's chdir and its execve report the same errno (a
// missing directory read "fork/exec /usr/bin/sleep: no such file or
// directory"), so the directory is looked at once the start has failed.
func workDirCause(dir string, err error) error {
	if dir == "" {
		return err
	}
	fi, serr := os.Stat(dir)
	switch {
	case serr != nil:
		return fmt.Errorf("work_dir %s: %w", dir, errors.Unwrap(serr))
	case !fi.IsDir():
		return fmt.Errorf("work_dir %s: not a directory", dir)
	}
	return err
}

// startGuest starts the guest (from guestCommand). A spec that asks for
// confinement starts it through the init (startConfined): the child is then
// the shim's init, which applies the settings and executes the guest in its
// own place, so the returned child is the guest all the same. A guest never
// runs with a setting silently missing: the failure says which step failed.
func startGuest(spec *messages.InstanceSpec, g *guestLaunch) (*childProc, *startError) {
	if err := closeInheritedFDs(); err != nil && spec.Security.CloseFDs {
		return nil, setupFailed("close_fds: %v", err)
	}
	if !needsInit(spec) {
		child, err := startChild(g.path, g.argv, g.env, g.dir, g.stdout, g.stderr, nil, 0)
		if err != nil {
			return nil, execFailed(workDirCause(g.dir, err))
		}
		return child, nil
	}
	plan, flags := planFor(spec, g)
	return startConfined(g, plan, flags)
}

// The init's report on the plan socket: markExec, written right before
// execve, then nothing (the socket is close-on-exec, so the shim reads EOF)
// or an initFailure when execve failed; or an initFailure alone when a step
// before failed.
const markExec = 'X'

// initFailure is the init's report of a failed step.
type initFailure struct {
	Step string `json:"step"` // "setuid 65534", "seccomp", "chdir /srv"
	Err  string `json:"error"`
	// Exec classes the failure with the guest's own exec failures
	// (ExitExecFailed): a work_dir it cannot enter, an executable it
	// cannot run. Every other step is a set-up failure (ExitUsage).
	Exec bool `json:"exec,omitempty"`
}

// maxInitReport bounds what the shim reads back from its init.
const maxInitReport = 64 << 10

// startConfined starts this binary as the init (InitArg) in the namespaces
// flags asks for, with the guest's stdout and stderr, hands it plan and
// waits for its report. On failure the init is killed and reaped before it
// returns.
func startConfined(g *guestLaunch, plan initPlan, flags uintptr) (*childProc, *startError) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, setupFailed("plan socket: %v", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "plan-socket"), os.NewFile(uintptr(fds[1]), "plan-socket-init")
	defer ours.Close()

	// /proc/self/exe is this very binary, even if its file was replaced
	// since. The init gets the shim's own environment, which holds no
	// secret (the contract), and changes directory as the guest.
	child, err := startChild("/proc/self/exe", []string{os.Args[0], InitArg}, os.Environ(), "", g.stdout, g.stderr, []*os.File{theirs}, flags)
	_ = theirs.Close()
	if err != nil {
		return nil, setupFailed("start the confining init: %v", err)
	}

	fail := func(e *startError) (*childProc, *startError) {
		child.kill()
		return nil, e
	}
	raw, err := json.Marshal(plan)
	if err == nil {
		_, err = ours.Write(raw)
	}
	clear(raw) // the guest's environment, secrets included
	if err != nil && !errors.Is(err, syscall.EPIPE) {
		return fail(setupFailed("hand the plan to the init: %v", err))
	}
	// EPIPE: the init died; its report (or its silence) says why below.
	if err := unix.Shutdown(fds[0], unix.SHUT_WR); err != nil && !errors.Is(err, unix.ENOTCONN) {
		return fail(setupFailed("plan socket: %v", err))
	}
	report, err := io.ReadAll(io.LimitReader(ours, maxInitReport))
	if err != nil {
		return fail(setupFailed("read the init's report: %v", err))
	}
	if se := decodeInitReport(report); se != nil {
		return fail(se)
	}
	return child, nil
}

// decodeInitReport turns what the init wrote before its end of the socket
// closed into nil (it reached execve, which succeeded) or the failure.
func decodeInitReport(report []byte) *startError {
	execReached := len(report) > 0 && report[0] == markExec
	if execReached {
		report = report[1:]
	}
	if len(report) == 0 {
		if execReached {
			return nil
		}
		return setupFailed("the confining init ended before it reached the guest")
	}
	var f initFailure
	if err := json.Unmarshal(report, &f); err != nil || f.Step == "" {
		return setupFailed("the confining init sent a malformed report")
	}
	text := f.Step + ": " + f.Err
	if f.Exec || execReached {
		return &startError{code: ExitExecFailed, reason: "exec failed: " + text}
	}
	return setupFailed("%s", text)
}
