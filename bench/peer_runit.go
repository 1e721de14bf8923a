package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// runitDriver runs runit: one runsvdir on a service directory, one runsv
// per service, controlled with sv.
type runitDriver struct{}

func (runitDriver) name() string { return "runit" }

func (runitDriver) effectiveTimeout(d time.Duration) time.Duration {
	return time.Duration(secondsCeil(d)) * time.Second
}

func (runitDriver) lookup(ctx context.Context, env *peerEnv) (string, error) {
	if err := lookPaths(installHint("apt-get install runit"), "runsvdir", "runsv", "sv"); err != nil {
		return "", err
	}
	return debianVersion("runit"), nil
}

func (runitDriver) notes(env *peerEnv) []string {
	return []string{
		"one `runsvdir DIR`; each service directory holds only an executable `run` (`#!/bin/sh` + `exec sleep 3600`), no `log/` service",
		"start: runsvdir is started on the populated directory (timed), runit's boot path: a running runsvdir looks at its directory only every few seconds (up to 5 s when idle), which would measure its poll, not its start. runsvdir sleeps 1 s after it starts, before its first scan, so every runit start figure includes that second",
		"stop: `sv down DIR...` (sv takes many services; batches of 500); runsv sends SIGTERM then SIGCONT",
		"kill past the timeout: `sv -w 1 force-stop` — sv takes whole seconds, so the timeout is 1 s, not 100 ms, and it is sv, polling the service's status, that sends the kill",
		"crash→restart: runsv waits 1 s before restarting a `run` that lived less than 1 s; the crashes are spaced further apart",
		"recovery: runsvdir is started again on the same directory",
		"shutdown as runit's stage 3 does it: SIGTERM to runsvdir, then `sv -w 7 force-shutdown` for every service",
	}
}

func (runitDriver) newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error) {
	sv := filepath.Join(dir, "service")
	for _, svc := range setup.services {
		d := filepath.Join(sv, svc.name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(d, "run"), []byte(runScript(svc.argv)), 0o755); err != nil {
			return nil, err
		}
	}
	return &runitInstance{env: env, dir: dir, svdir: sv, setup: setup}, nil
}

type runitInstance struct {
	env      *peerEnv
	dir      string
	svdir    string
	setup    peerSetup
	runsvdir *daemon
}

func (r *runitInstance) svc(name string) string { return filepath.Join(r.svdir, name) }

// sv runs `sv [opts] cmd DIR...` over every service, in batches.
func (r *runitInstance) sv(ctx context.Context, opts []string, cmd string, names []string) error {
	const batch = 500
	for i := 0; i < len(names); i += batch {
		args := append(append([]string{}, opts...), cmd)
		for _, n := range names[i:min(i+batch, len(names))] {
			args = append(args, r.svc(n))
		}
		if err := r.env.procs.run(ctx, r.env.cmdTimeout, r.dir, "sv.log", nil, "sv", args...); err != nil {
			return err
		}
	}
	return nil
}

func (r *runitInstance) names() []string {
	out := make([]string, len(r.setup.services))
	for i, s := range r.setup.services {
		out[i] = s.name
	}
	return out
}

// launch has nothing to do: runit starts services by starting runsvdir.
func (r *runitInstance) launch(context.Context) error { return nil }

func (r *runitInstance) startRunsvdir() error {
	d, err := r.env.procs.startDaemon(r.dir, "runsvdir.log", nil, "runsvdir", r.svdir)
	if err != nil {
		return err
	}
	r.runsvdir = d
	return nil
}

func (r *runitInstance) startAll(context.Context) error { return r.startRunsvdir() }

func (r *runitInstance) stopAll(ctx context.Context) error {
	return r.sv(ctx, nil, "down", r.names())
}

// startOne waits (`sv start`) until runsv reports the service up: a stop
// sent before that would read the previous run's "down" status and return
// without ever killing the service.
func (r *runitInstance) startOne(ctx context.Context, name string) error {
	return r.sv(ctx, nil, "start", []string{name})
}

func (r *runitInstance) stopOne(ctx context.Context, name string) error {
	w := strconv.Itoa(secondsCeil(r.setup.stopTimeout))
	err := r.sv(ctx, []string{"-w", w}, "force-stop", []string{name})
	if err != nil && r.setup.stopTimeout > 0 {
		// sv exits 1 when it had to kill: the service did not stop within
		// the timeout, which is the point of the workload.
		return nil
	}
	return err
}

func (r *runitInstance) roots() []int {
	if r.runsvdir == nil || r.runsvdir.exited() {
		return nil
	}
	return []int{r.runsvdir.pid()}
}

func (*runitInstance) signalled(pid int) int { return pid }

func (r *runitInstance) metrics(context.Context) (int, error) { return 0, errNoMetrics }

func (r *runitInstance) beforeKill(context.Context) error { return nil }

func (r *runitInstance) recover(ctx context.Context) error {
	if r.runsvdir != nil {
		_ = r.runsvdir.waitExit(5 * time.Second)
	}
	return r.startRunsvdir()
}

func (r *runitInstance) shutdown(ctx context.Context) error {
	if r.runsvdir == nil || r.runsvdir.exited() {
		return nil
	}
	// runit's own shutdown (its stage 3): runsvdir is stopped first
	// (SIGTERM: it exits at once and leaves the runsv running, so that none
	// is restarted), then `sv force-shutdown` tells every runsv to stop its
	// service and exit, killing a service still up after 7 s.
	tree := descendants(r.runsvdir.pid())
	err := r.runsvdir.terminate(syscall.SIGTERM, 10*time.Second)
	// sv exits non-zero when it had to kill a service (the SIGTERM-ignorer):
	// what counts is that every runsv and service is gone.
	serr := r.sv(ctx, []string{"-w", "7"}, "force-shutdown", r.names())
	if !pollUntil(30*time.Second, 10*time.Millisecond, func() bool { r.env.procs.reapOrphans(); return !anyLive(tree) }) && err == nil {
		err = fmt.Errorf("processes of runsvdir still running 30 s after sv force-shutdown: %v", serr)
	}
	return err
}
