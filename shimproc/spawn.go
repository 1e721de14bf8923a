package shimproc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// SpawnRequest describes one shim to spawn.
type SpawnRequest struct {
	// Box is the box's directory; it must exist (layout.Box.Create).
	Box layout.Box
	// Binary is the shim's path. It must exist, be executable and pass
	// CheckShimBinary (nobody but this uid or root controls it), else
	// messages.ErrShimNotFound "box runner binary not found: ...". The
	// shim runs from its real path, every symbolic link resolved.
	Binary string
	// Spec is handed to the shim on stdin. Spawn fills BoxID, ConsoleOutput
	// (Box.ConsoleLogPath()), ExitFile (Box.ExitPath()) and Version when empty.
	Spec messages.InstanceSpec
	// ReadyTimeout bounds spawn → ready; 0 means messages.DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Cgroup says whether the box gets its own cgroup v2.
	Cgroup CgroupMode
	// CgroupParent is the path, relative to the cgroup2 root, under which the
	// box's cgroup (named after the box ID) is created, e.g.
	// "boxsup/<hash of home>"; "" means DefaultCgroupParent. Each generation
	// gets a cgroup of its own under it: PARENT/ID/gen-N (see BoxCgroupDir).
	CgroupParent string
	// Generation is the box's generation this shim runs (names its cgroup).
	Generation uint64
	// SpawnToken, when set, is put in the shim's environment as
	// BOXSUP_SPAWN_TOKEN: recorded before the spawn, it lets a later
	// supervisor find this shim among all processes (FindShim) when the box
	// has no cgroup. It must not be secret.
	SpawnToken string
	// Logger receives the package's logs (fields box_id, pid); nil discards.
	// Its level is the shim's too (LogLevelEnv): trace, debug, info, warn
	// or error, the finest it lets through; info when Logger is nil.
	Logger logrus.FieldLogger
}

// Spawn starts the shim and waits until it is ready (Start + WaitReady). On
// failure the box's tree has been killed, the handle closed and a cgroup this
// spawn used removed.
func Spawn(ctx context.Context, req SpawnRequest) (*Handle, error) {
	h, err := Start(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := h.WaitReady(ctx); err != nil {
		if rmErr := h.RemoveCgroup(); rmErr != nil {
			h.log.WithError(rmErr).Warn("removing the cgroup of a box that failed to start")
		} else if h.cgroup != "" {
			removeIfEmpty(filepath.Dir(h.cgroup)) // the box's, when no generation is left
		}
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// Start spawns the shim (argv [binary --box-id ID], spec JSON on stdin, ready
// pipe on fd 3, keepalive pipe on fd 4 unless detached, stdout and stderr
// appended to shim.log; own session when detached, else own process group;
// cloned straight into the generation's cgroup when it has one), verifies the
// cgroup membership, opens the pidfd and reads the identity. The spec is
// written to the shim's stdin in the background; Start does not wait for
// that nor for readiness: call WaitReady, which reports both (a shim that
// does not read its spec within the ready timeout, or ctx ending first, is
// killed). Bad input fails with a typed error before anything on disk
// changes.
func Start(ctx context.Context, req SpawnRequest) (*Handle, error) {
	began := time.Now()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("box %s: start: %w", req.Box.ID, err)
	}
	p, err := planSpawn(req)
	if err != nil {
		return nil, err
	}
	// Registered until Handle.Close: anything logged about this box while
	// its handle lives is scrubbed of the spec's secrets.
	unregister := logging.RegisterSecrets(p.secrets...)
	p.log.WithFields(logrus.Fields{
		"engine": p.spec.Engine, "transport": orNone(p.spec.Transport), "ready": readyPath(&p.spec),
		"detach": p.spec.Detach, "gen": req.Generation,
	}).Info("box starting")
	h, err := launch(ctx, p)
	if err != nil {
		unregister()
		return nil, err
	}
	h.mu.Lock()
	h.unregister = unregister
	h.mu.Unlock()
	logging.EmitRedactedConfigTrace(h.log, string(p.spec.Engine), p.box.ID, p.specJSON)
	h.log.WithField("took", time.Since(began)).Info("box runner spawned")
	return h, nil
}

// orNone is s, or "none" when empty, for a log field.
func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// readyPath says how the shim signals readiness, for the log.
func readyPath(spec *messages.InstanceSpec) string {
	if spec.ReadyTransport != "" {
		return "socket " + spec.ReadyTransport
	}
	return "pipe"
}

// launch does Start's work once the request is known to be good.
func launch(ctx context.Context, p *spawnPlan) (_ *Handle, err error) {
	// undo runs, in reverse, when launch fails before a Handle owns the pieces.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	child := &childFiles{}
	defer child.close() // the parent never keeps the child's ends
	if p.cgroupDir != "" {
		dirFD, err := createBoxCgroup(p.boxCgroup, p.cgroupDir, p.box.ID)
		if err != nil {
			return nil, err
		}
		child.cgroup = dirFD
		undo = append(undo, func() { _ = removeCgroup(p.cgroupDir, cgroupRemoveWait) })
		if p.limits != nil {
			undoLimits, err := p.limits.apply(p.cgroupRoot, p.cgroupDir)
			if err != nil {
				return nil, fmt.Errorf("box %s: %w", p.box.ID, err)
			}
			undo = append(undo, undoLimits)
		}
	}
	parent, err := child.open(p.box.ShimLogPath(), !p.spec.Detach, p.spec.RestartInPlace)
	if err != nil {
		return nil, fmt.Errorf("box %s: %w", p.box.ID, err)
	}
	undo = append(undo, parent.close)
	// Last steps before the spawn, so that a failure above leaves the
	// previous run's exit record in place.
	if err := p.box.RotateExit(); err != nil {
		return nil, fmt.Errorf("box %s: rotating the exit record: %w", p.box.ID, err)
	}
	for _, path := range p.staleSockets {
		err := os.Remove(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("box %s: removing stale socket: %w", p.box.ID, err)
		}
		if err == nil {
			// A previous run's socket, nobody listening: it would make
			// the guest's bind fail.
			p.log.WithField("socket", path).Warn("removed a stale socket before the start")
		}
	}

	cmd := &exec.Cmd{
		Path:        p.binary,
		Args:        []string{p.binary, "--box-id", p.box.ID},
		Env:         p.shimEnviron(),
		Dir:         p.box.Dir,
		Stdin:       child.stdin,
		Stdout:      child.log,
		Stderr:      child.log,
		ExtraFiles:  child.extraFiles(),
		SysProcAttr: &syscall.SysProcAttr{Setsid: p.spec.Detach, Setpgid: !p.spec.Detach},
	}
	if child.cgroup != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(child.cgroup.Fd())
	}
	spawnedAt := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, messages.Errorf(messages.ErrStartFailed, "box %s: starting the box runner %s: %w", p.box.ID, p.binary, err)
	}
	pid := cmd.Process.Pid
	// Our own unreaped child cannot be recycled, so this pidfd is race-free.
	pfd, err := openPidFD(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return nil, fmt.Errorf("box %s: %w", p.box.ID, err)
	}
	// From here on the pidfd is the only handle on the child: os/exec keeps
	// no second fd and no Wait goroutine.
	_ = cmd.Process.Release()
	child.close()

	h, err := newOwnedHandle(p, pid, pfd, parent, spawnedAt)
	if err != nil {
		_ = pfd.sendSignal(unix.SIGKILL)
		_ = unix.Kill(-pid, unix.SIGKILL) // its own group; still unreaped, so the id is ours
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		_ = pfd.close()
		return nil, err
	}
	// The spec is handed over on a goroutine of the handle's (parked in the
	// netpoller while the pipe is full), so that Start returns right after
	// the fork: a caller that bounds concurrent forks need not hold its
	// bound while a slow shim reads. WaitReady reports the outcome.
	h.startHandOver(ctx, parent.stdin, p.specJSON, spawnedAt.Add(p.readyTimeout))
	parent.stdin = nil
	return h, nil
}

// newOwnedHandle builds the handle of a freshly started child, checks its
// cgroup membership and starts the exit watcher.
func newOwnedHandle(p *spawnPlan, pid int, pfd *pidFD, parent *parentFiles, spawnedAt time.Time) (*Handle, error) {
	if p.cgroupDir != "" {
		if err := verifyCgroupMember(pid, p.cgroupRoot, p.cgroupDir); err != nil {
			return nil, err
		}
	}
	if p.limits != nil {
		// Before the hand-over: the shim forks its guest only once it has
		// read its spec, so the guest is born inside the v1 cgroups too.
		if err := p.limits.joinV1(pid); err != nil {
			return nil, fmt.Errorf("box %s: %w", p.box.ID, err)
		}
	}
	id, err := ReadIdentity(pid)
	if err != nil {
		return nil, fmt.Errorf("box %s: %w", p.box.ID, err)
	}
	h := &Handle{
		box:          p.box,
		pid:          pid,
		identity:     id,
		owned:        true,
		cgroup:       p.cgroupDir,
		pgid:         pid, // Setpgid or Setsid made the shim its group's leader
		startedAt:    startTimeToWall(id.StartTime),
		log:          p.log.WithField("pid", pid),
		pidfd:        pfd,
		secrets:      p.secrets,
		exited:       make(chan struct{}),
		watcherDone:  make(chan struct{}),
		readyR:       parent.ready,
		inPlace:      p.spec.RestartInPlace,
		keepalive:    parent.keepalive,
		readyTimeout: p.readyTimeout,
		readySince:   spawnedAt,
	}
	parent.ready, parent.keepalive = nil, nil // the handle owns them now
	h.startWatcher()
	return h, nil
}

// shimEnviron is the shim's environment: the supervisor's minus secrets, plus
// BOXSUP_CGROUP naming the box's cgroup when it has one, so that the shim can
// sweep what its guest left behind from cgroup.procs instead of scanning all
// of /proc (a stop of many boxes would otherwise cost O(boxes²) reads), and
// GOMAXPROCS=1 (shimGOMAXPROCS).
func (p *spawnPlan) shimEnviron() []string {
	var env []string
	for _, kv := range shimEnv(os.Environ(), &p.spec) {
		// An inherited value (a supervisor that itself runs in a box) would
		// point the shim at somebody else's cgroup, or name another spawn.
		if !strings.HasPrefix(kv, CgroupEnv+"=") && !strings.HasPrefix(kv, SpawnTokenEnv+"=") && !strings.HasPrefix(kv, LogLevelEnv+"=") &&
			!strings.HasPrefix(kv, goMaxProcsEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, goMaxProcsEnv+"="+shimGOMAXPROCS, LogLevelEnv+"="+p.logLevel)
	if p.cgroupDir != "" {
		env = append(env, CgroupEnv+"="+p.cgroupDir)
	}
	if p.spawnToken != "" {
		env = append(env, SpawnTokenEnv+"="+p.spawnToken)
	}
	return env
}

// goMaxProcsEnv is the Go runtime's own variable: the number of threads
// that may run Go code at once, read once when the runtime starts.
const goMaxProcsEnv = "GOMAXPROCS"

// shimGOMAXPROCS is the value the supervisor puts in every shim's
// environment (replacing an inherited one). A shim does nothing in
// parallel, and with one P the Go runtime of the reference shim keeps one
// set of per-P caches and fewer threads: about 160 KiB less private memory
// per box and a faster start (docs/PERFORMANCE.md). It must be in the
// environment, not set by the shim itself: runtime.GOMAXPROCS called from
// the shim's own code comes after the runtime has started with a P per core,
// and resizing costs more than it saves. The guest's environment is built
// from the spec alone, so it never sees this variable; a shim in another
// language ignores it.
const shimGOMAXPROCS = "1"

// LogLevelEnv names the environment variable that gives the shim the
// supervisor's log level (the name of the supervisor's own, BOXSUP_LOG),
// as boxlite passes RUST_LOG to its shim: a shim writes its lifecycle
// lines to shim.log at that level.
const LogLevelEnv = logging.LevelEnv

// SpawnTokenEnv names the environment variable that carries
// SpawnRequest.SpawnToken.
const SpawnTokenEnv = "BOXSUP_SPAWN_TOKEN"

// CgroupEnv names the environment variable that tells a shim the absolute
// path of its box's cgroup directory (docs/SHIM-PROTOCOL.md).
const CgroupEnv = "BOXSUP_CGROUP"
