package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// s6Driver runs skarnet's s6: one s6-svscan on a scan directory, one
// s6-supervise per service directory, each running ./run.
type s6Driver struct{}

func (s6Driver) name() string { return "s6" }

func (s6Driver) effectiveTimeout(d time.Duration) time.Duration { return d }

func (s6Driver) lookup(ctx context.Context, env *peerEnv) (string, error) {
	if err := lookPaths(installHint("apt-get install s6"), "s6-svscan", "s6-supervise", "s6-svscanctl", "s6-svc"); err != nil {
		return "", err
	}
	return debianVersion("s6"), nil
}

func (s6Driver) notes(env *peerEnv) []string {
	return []string{
		"one `s6-svscan -c MAX` (MAX = twice the services, above its default of 500) on a scan directory; each service directory holds only an executable `run` (`#!/bin/sh` + `exec sleep 3600`), so readiness notification is off (no `notification-fd`) and there is no logger or `finish`",
		"start: the service directories are written into the scan directory while s6-svscan runs (untimed; it does not rescan by itself), then `s6-svscanctl -a` (timed)",
		"stop: `s6-svc -d DIR` per service (s6-svc takes one directory), " + strconv.Itoa(env.par) + " at a time; s6-supervise sends SIGTERM then SIGCONT",
		"kill past the timeout: a `timeout-kill` file of 100 ms",
		"crash→restart: after a death s6-supervise (2.11) runs `./finish` (absent here) and then waits 1 s before starting `./run` again, however long the service ran: the figure is that deliberate throttle, not a cost",
		"recovery: s6-svscan is started again on the same scan directory",
		"shutdown: `s6-svscanctl -t`",
	}
}

func (s6Driver) newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error) {
	scan := filepath.Join(dir, "scan")
	if err := os.MkdirAll(scan, 0o755); err != nil {
		return nil, err
	}
	return &s6Instance{env: env, dir: dir, scan: scan, setup: setup}, nil
}

type s6Instance struct {
	env    *peerEnv
	dir    string
	scan   string
	setup  peerSetup
	svscan *daemon
}

func (s *s6Instance) svc(name string) string { return filepath.Join(s.scan, name) }

func (s *s6Instance) launchSvscan() error {
	max := max(2*len(s.setup.services), 500)
	d, err := s.env.procs.startDaemon(s.dir, "s6-svscan.log", nil, "s6-svscan", "-c", strconv.Itoa(max), s.scan)
	if err != nil {
		return err
	}
	s.svscan = d
	control := filepath.Join(s.scan, ".s6-svscan", "control")
	if !pollUntil(10*time.Second, 2*time.Millisecond, func() bool { return fifoReady(control) || d.exited() }) || d.exited() {
		return fmt.Errorf("s6-svscan did not come up%s", logTail(filepath.Join(s.dir, "s6-svscan.log"), 0))
	}
	return nil
}

// fifoReady reports whether a FIFO exists at path and has a reader.
func fifoReady(path string) bool {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

func (s *s6Instance) launch(ctx context.Context) error {
	if err := s.launchSvscan(); err != nil {
		return err
	}
	// The service directories go in now that s6-svscan runs: it sees them
	// at the next scan, which startAll asks for.
	for _, svc := range s.setup.services {
		dir := s.svc(svc.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "run"), []byte(runScript(svc.argv)), 0o755); err != nil {
			return err
		}
		if s.setup.stopTimeout > 0 {
			ms := strconv.FormatInt(s.setup.stopTimeout.Milliseconds(), 10)
			if err := os.WriteFile(filepath.Join(dir, "timeout-kill"), []byte(ms+"\n"), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *s6Instance) ctl(ctx context.Context, args ...string) error {
	return s.env.procs.run(ctx, s.env.cmdTimeout, s.dir, "s6-ctl.log", nil, "s6-svscanctl", append(args, s.scan)...)
}

func (s *s6Instance) svcCmd(ctx context.Context, flag, name string) error {
	return s.env.procs.run(ctx, s.env.cmdTimeout, s.dir, "s6-svc.log", nil, "s6-svc", flag, s.svc(name))
}

func (s *s6Instance) startAll(ctx context.Context) error { return s.ctl(ctx, "-a") }

func (s *s6Instance) stopAll(ctx context.Context) error {
	return forEach(len(s.setup.services), s.env.par, func(i int) error {
		return s.svcCmd(ctx, "-d", s.setup.services[i].name)
	})
}

func (s *s6Instance) startOne(ctx context.Context, name string) error {
	return s.svcCmd(ctx, "-u", name)
}

func (s *s6Instance) stopOne(ctx context.Context, name string) error {
	return s.svcCmd(ctx, "-d", name)
}

func (s *s6Instance) roots() []int {
	if s.svscan == nil || s.svscan.exited() {
		return nil
	}
	return []int{s.svscan.pid()}
}

func (*s6Instance) signalled(pid int) int { return pid }

func (s *s6Instance) metrics(context.Context) (int, error) { return 0, errNoMetrics }

func (s *s6Instance) beforeKill(context.Context) error { return nil }

func (s *s6Instance) recover(ctx context.Context) error {
	if s.svscan != nil {
		_ = s.svscan.waitExit(5 * time.Second)
	}
	return s.launchSvscan()
}

func (s *s6Instance) shutdown(ctx context.Context) error {
	if s.svscan == nil || s.svscan.exited() {
		return nil
	}
	if err := s.ctl(ctx, "-t"); err != nil {
		return err
	}
	return s.svscan.waitExit(30 * time.Second)
}

// debianVersion returns the installed version of a Debian package, or "".
func debianVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
