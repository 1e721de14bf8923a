package bench

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// boxsupDriver runs boxsup the way a long-lived host does: a `boxsup
// supervise` daemon, driven through its control socket — the interface an
// orchestrator in another process uses.
type boxsupDriver struct{}

func (boxsupDriver) name() string { return "boxsup" }

func (boxsupDriver) effectiveTimeout(d time.Duration) time.Duration { return d }

func (boxsupDriver) lookup(ctx context.Context, env *peerEnv) (string, error) {
	for _, p := range []string{env.boxsup, env.shim} {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (run `make build`)", err)
		}
	}
	info, err := buildinfo.ReadFile(env.boxsup)
	if err != nil {
		return "", nil
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev, nil
}

func (boxsupDriver) notes(env *peerEnv) []string {
	return []string{
		"`bin/boxsup supervise --stop-on-exit` with a home of its own and the reference shim `bin/boxsup-shim`; box cgroups as by default (one per box where cgroup v2 is writable)",
		"each box: the spec of `boxsup run -d` (detached: it outlives the supervisor) running `/usr/bin/sleep 3600`; restart policy `always` with the default backoff, and for the crash workload `always` without backoff or restart limit",
		"start: one control-socket `start` request per box, all at once (the daemon runs before the timed part); stop: one `stop` request per box, all at once",
		"kill past the timeout: a `stop` request with a 100 ms timeout",
		"metrics: one `metrics_all` request (CPU, memory, processes and disk of every box)",
		"recovery: `boxsup supervise` started again on the same home, which adopts the running boxes after checking each identity; shutdown: SIGTERM to supervise (`--stop-on-exit` stops every box)",
	}
}

func (boxsupDriver) newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error) {
	b := &boxsupInstance{env: env, dir: dir, home: filepath.Join(dir, "home"), setup: setup}
	h, err := layout.Open(b.home)
	if err != nil {
		return nil, err
	}
	if b.sock, err = h.ControlSocketPath(); err != nil {
		return nil, err
	}
	return b, nil
}

type boxsupInstance struct {
	env    *peerEnv
	dir    string
	home   string
	sock   string
	setup  peerSetup
	proc   *daemon
	client *control.Client
}

func (b *boxsupInstance) startDaemon(ctx context.Context) error {
	d, err := b.env.procs.startDaemon(b.dir, "supervise.log", nil, b.env.boxsup,
		"--home", b.home, "--shim", b.env.shim, "--log-level", "warn", "supervise", "--stop-on-exit")
	if err != nil {
		return err
	}
	b.proc = d
	var derr error
	ok := pollUntil(30*time.Second, 2*time.Millisecond, func() bool {
		if d.exited() {
			return true
		}
		b.client, derr = control.Dial(ctx, b.sock)
		return derr == nil
	})
	if !ok || d.exited() {
		return fmt.Errorf("boxsup supervise did not answer on %s: %v%s", b.sock, derr, logTail(filepath.Join(b.dir, "supervise.log"), 0))
	}
	return nil
}

func (b *boxsupInstance) launch(ctx context.Context) error { return b.startDaemon(ctx) }

// request is the StartBox of a service.
func (b *boxsupInstance) request(svc peerService) messages.StartBox {
	policy := messages.RestartPolicy{Mode: messages.RestartAlways}
	if b.setup.noBackoff {
		policy = restartPolicy
	}
	return messages.StartBox{
		ID: svc.name,
		Spec: messages.InstanceSpec{
			Engine:          messages.EngineProcess,
			GuestEntrypoint: messages.Entrypoint{Executable: svc.argv[0], Args: svc.argv[1:]},
			Detach:          true,
		},
		Restart:     policy,
		StopTimeout: b.setup.stopTimeout,
	}
}

func (b *boxsupInstance) startAll(ctx context.Context) error {
	_, errs := parallel(len(b.setup.services), func(i int) error {
		_, err := b.client.Start(ctx, b.request(b.setup.services[i]))
		return err
	})
	return firstErrors(errs)
}

func (b *boxsupInstance) stopAll(ctx context.Context) error {
	_, errs := parallel(len(b.setup.services), func(i int) error {
		_, err := b.client.Stop(ctx, b.setup.services[i].name, 0)
		return err
	})
	return firstErrors(errs)
}

func (b *boxsupInstance) startOne(ctx context.Context, name string) error {
	_, err := b.client.StartExisting(ctx, name)
	return err
}

func (b *boxsupInstance) stopOne(ctx context.Context, name string) error {
	_, err := b.client.Stop(ctx, name, b.setup.stopTimeout)
	return err
}

func (b *boxsupInstance) roots() []int {
	if b.proc == nil || b.proc.exited() {
		return nil
	}
	return []int{b.proc.pid()}
}

// signalled is the guest's shim: boxsup signals the shim, which relays the
// signal to the guest.
func (b *boxsupInstance) signalled(pid int) int {
	if info, err := readProcInfo(pid); err == nil {
		return info.ppid
	}
	return pid
}

func (b *boxsupInstance) metrics(ctx context.Context) (int, error) {
	ms, err := b.client.MetricsAll(ctx)
	return len(ms), err
}

func (b *boxsupInstance) beforeKill(context.Context) error { return nil }

func (b *boxsupInstance) recover(ctx context.Context) error {
	if b.proc != nil {
		_ = b.proc.waitExit(5 * time.Second)
	}
	return b.startDaemon(ctx)
}

func (b *boxsupInstance) shutdown(ctx context.Context) error {
	var err error
	if b.proc != nil && !b.proc.exited() {
		err = b.proc.terminate(syscall.SIGTERM, 90*time.Second)
	}
	if dir, cerr := removeHomeCgroup(b.home); cerr != nil && err == nil {
		err = fmt.Errorf("cgroup %s: %w", dir, cerr)
	}
	return err
}
