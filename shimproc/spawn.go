package shimproc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
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
	// Binary is the shim's path. It must exist and be executable, else
	// messages.ErrShimNotFound "box runner binary not found: PATH".
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
	// "boxsup/<hash of home>"; "" means DefaultCgroupParent.
	CgroupParent string
	// Logger receives the package's logs (fields box_id, pid); nil discards.
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
		}
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// Start spawns the shim (argv [binary --box-id ID], spec JSON on stdin, ready
// pipe on fd 3, keepalive pipe on fd 4 unless detached, stdout and stderr
// appended to shim.log; own session when detached, else own process group;
// cloned straight into the box's cgroup when it has one), verifies the cgroup
// membership, opens the pidfd and reads the identity. It does not wait for
// readiness: call WaitReady. Bad input fails with a typed error before
// anything on disk changes.
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
	h, err := launch(ctx, p)
	if err != nil {
		unregister()
		return nil, err
	}
	h.mu.Lock()
	h.unregister = unregister
	h.mu.Unlock()
	logging.EmitRedactedConfigTrace(h.log, string(p.spec.Engine), p.box.ID, p.specJSON)
	h.log.WithField("took", time.Since(began)).Debug("box runner spawned")
	return h, nil
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
		dirFD, created, err := createBoxCgroup(p.cgroupDir, p.box.ID)
		if err != nil {
			return nil, err
		}
		child.cgroup = dirFD
		if created {
			undo = append(undo, func() { _ = removeCgroup(p.cgroupDir, cgroupRemoveWait) })
		}
	}
	parent, err := child.open(p.box.ShimLogPath(), !p.spec.Detach)
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
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("box %s: removing stale socket: %w", p.box.ID, err)
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
		return nil, messages.Errorf(messages.ErrStartFailed, "box %s: starting the box runner %s: %v", p.box.ID, p.binary, err)
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
	// Handing over the spec counts against the ready timeout: a spec that
	// fits the pipe buffer (64 KiB) is written at once, a bigger one needs
	// the shim to read. A shorter separate limit failed starts on a heavily
	// loaded host where the writer was merely not scheduled in time.
	writeLimit := p.readyTimeout
	if err := writeSpec(ctx, parent.stdin, p.specJSON, spawnedAt.Add(writeLimit)); err != nil {
		switch {
		case ctx.Err() != nil:
			h.abandon(0)
			_ = h.Close()
			return nil, fmt.Errorf("box %s: handing the spec to the box runner: %w", p.box.ID, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			rec, exited := h.abandon(0)
			_ = h.Close()
			return nil, messages.Errorf(messages.ErrStartFailed, "box %s: the box runner did not read its spec within %v; %s",
				p.box.ID, writeLimit, redactSecrets(describeExit(rec, exited), p.secrets))
		}
		// Most likely the shim died before reading (EPIPE): let it finish
		// writing exit.json, whose reason makes the error useful.
		rec, exited := h.abandon(startFailGrace)
		_ = h.Close()
		return nil, messages.Errorf(messages.ErrStartFailed, "box %s: handing the spec to the box runner: %v; %s",
			p.box.ID, err, redactSecrets(describeExit(rec, exited), p.secrets))
	}
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
		keepalive:    parent.keepalive,
		readyTimeout: p.readyTimeout,
		readySince:   spawnedAt,
	}
	parent.ready, parent.keepalive = nil, nil // the handle owns them now
	h.startWatcher()
	return h, nil
}

// writeSpec writes the spec JSON to the shim's stdin and closes it. The
// deadline (and ctx) keep a shim that never reads from hanging us.
func writeSpec(ctx context.Context, stdin *os.File, specJSON []byte, deadline time.Time) error {
	defer stdin.Close()
	if err := stdin.SetWriteDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = stdin.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := stdin.Write(specJSON)
	stop()
	if err != nil {
		return err
	}
	return stdin.Close()
}

// shimEnviron is the shim's environment: the supervisor's minus secrets, plus
// BOXSUP_CGROUP naming the box's cgroup when it has one, so that the shim can
// sweep what its guest left behind from cgroup.procs instead of scanning all
// of /proc (a stop of many boxes would otherwise cost O(boxes²) reads).
func (p *spawnPlan) shimEnviron() []string {
	var env []string
	for _, kv := range shimEnv(os.Environ(), &p.spec) {
		// An inherited value (a supervisor that itself runs in a box) would
		// point the shim at somebody else's cgroup.
		if !strings.HasPrefix(kv, CgroupEnv+"=") {
			env = append(env, kv)
		}
	}
	if p.cgroupDir != "" {
		env = append(env, CgroupEnv+"="+p.cgroupDir)
	}
	return env
}

// CgroupEnv names the environment variable that tells a shim the absolute
// path of its box's cgroup directory (docs/SHIM-PROTOCOL.md).
const CgroupEnv = "BOXSUP_CGROUP"
