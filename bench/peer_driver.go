package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"
)

// peerService is one supervised program of a peer workload: the same argv
// for every supervisor.
type peerService struct {
	name string
	argv []string // absolute executable first
}

// peerSetup is what a workload asks of a supervisor.
type peerSetup struct {
	services []peerService
	// stopTimeout is the grace between the stop signal and SIGKILL; 0 leaves
	// the peer's default.
	stopTimeout time.Duration
	// noBackoff asks for a restart at once after a crash, where the peer has
	// a knob for it (boxsup's restart policy).
	noBackoff bool
}

// errNoMetrics is returned by peerInstance.metrics for a supervisor that
// reports no per-process figures.
var errNoMetrics = errors.New("no per-process metrics")

// peerDriver knows how to run one supervisor the way its documentation
// recommends for the job.
type peerDriver interface {
	// name is the column of the report.
	name() string
	// lookup finds the supervisor's programs and returns its version, or the
	// reason it cannot run here.
	lookup(ctx context.Context, env *peerEnv) (string, error)
	// notes are the configuration choices, for the report and
	// docs/PERFORMANCE.md.
	notes(env *peerEnv) []string
	// effectiveTimeout is the stop timeout the peer applies when asked for d
	// (some count whole seconds).
	effectiveTimeout(d time.Duration) time.Duration
	// newInstance writes the configuration for setup in dir (untimed); it
	// starts nothing.
	newInstance(env *peerEnv, dir string, setup peerSetup) (peerInstance, error)
}

// peerInstance is one supervisor with its services, from launch to
// shutdown. Each method returns once the peer's command has returned;
// whether the sleep children run or have exited is for the workload to
// see in /proc.
type peerInstance interface {
	// launch starts the supervisor with none of the services running
	// (untimed) and returns once it answers.
	launch(ctx context.Context) error
	// startAll asks for every service to start (timed).
	startAll(ctx context.Context) error
	// stopAll asks for every service to stop and stay down (timed).
	stopAll(ctx context.Context) error
	// startOne and stopOne do the same for one service; stopOne honours
	// the setup's stopTimeout.
	startOne(ctx context.Context, name string) error
	stopOne(ctx context.Context, name string) error
	// signalled is the process the peer sends a stop signal to when it
	// stops the service whose sleep is pid: the sleep itself, or a helper
	// that relays the signal (boxsup's shim).
	signalled(pid int) int
	// roots are the supervisor's own processes, the tops of its tree.
	roots() []int
	// metrics samples every service once through the peer's own interface
	// and returns how many it covered; errNoMetrics where it has none.
	metrics(ctx context.Context) (int, error)
	// beforeKill does what the peer's documentation asks for so that it
	// can recover after a crash of the supervisor (pm2 save); recover
	// relaunches the supervisor the documented way after it was killed.
	beforeKill(ctx context.Context) error
	recover(ctx context.Context) error
	// shutdown stops every service and the supervisor with the peer's own
	// commands.
	shutdown(ctx context.Context) error
}

// peerEnv is what every driver shares within a run.
type peerEnv struct {
	procs *procs
	watch *procWatch
	// sleep is the sleep binary every service runs (argv[0]); sleepExe is
	// the real path /proc/PID/exe shows for it.
	sleep, sleepExe string
	sh              string
	boxsup, shim    string
	// ochinchina is the path of the Go supervisord built for this run, or
	// "" with ochinchinaErr saying why not.
	ochinchina    string
	ochinchinaErr error
	// par bounds how many per-service commands run at once for peers whose
	// command takes one service (s6-svc).
	par int
	// stopWait is how long any one peer command may take.
	cmdTimeout time.Duration
}

// lookPaths finds each program on PATH and returns the first missing one
// as an error that says how to install it.
func lookPaths(install string, progs ...string) error {
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found on PATH; install it with %s", p, install)
		}
	}
	return nil
}

// installHint is printed for peers installed by bench/peers/install.
func installHint(pkg string) string {
	return fmt.Sprintf("`sudo bench/peers/install` (or %s)", pkg)
}

// runScript is the run script of s6 and runit: a shell that execs argv,
// after setting the traps of an ignorer where argv is one (the shell's
// SIG_IGN survives exec, so the guest is the same single process).
func runScript(argv []string) string {
	s := "#!/bin/sh\n"
	if len(argv) >= 3 && filepath.Base(argv[0]) == "sh" && argv[1] == "-c" {
		return s + argv[2] + "\n"
	}
	s += "exec"
	for _, a := range argv {
		s += " " + shellQuote(a)
	}
	return s + "\n"
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '-' || c == '_') {
			return "'" + s + "'"
		}
	}
	return s
}

// ignorerArgv is the SIGTERM-ignoring guest of the kill-past-timeout
// workload: a shell that ignores SIGTERM and SIGINT (pm2 stops with
// SIGINT) and execs sleep, which keeps both ignored.
func ignorerArgv(sh, sleep string) []string {
	return []string{sh, "-c", "trap '' TERM INT && exec " + sleep + " 3600"}
}

// secondsCeil rounds d up to whole seconds, at least one: the unit of
// peers whose timeouts are whole seconds.
func secondsCeil(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
