package shim

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// Main runs the shim: it reads the spec, starts the guest, signals
// readiness, relays stop requests and keepalive loss, and returns the exit
// code for os.Exit once the guest is gone and exit.json is written.
func Main() int {
	// Look at fds 3 and 4 before anything can open a descriptor that might
	// take their numbers.
	readyFD, keepaliveFD := inspectInheritedFDs()

	// Catch stop requests; one caught before the guest exists is relayed
	// as soon as it does. Installing the handlers takes os/signal a round
	// trip with a thread of its own per signal (about a millisecond of a
	// shim's start), so it runs while the spec is read; nothing is started
	// and nothing written before it is done (catching).
	signals := make(chan os.Signal, 8)
	catching := make(chan struct{})
	go func() {
		defer close(catching)
		signal.Notify(signals, forwardedSignals...)
		// A write to a stderr whose reader is gone must fail with EPIPE,
		// not kill the shim (and with it, through Pdeathsig, the guest). A
		// handler, unlike signal.Ignore, is reset by exec: the guest keeps
		// the default.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	}()
	defer func() {
		<-catching
		signal.Stop(signals)
	}()

	s := &shim{stderr: os.Stderr, level: levelInfo, catching: catching}
	s.ready, s.readyErr = openReadyPipe(readyFD)
	defer s.ready.abandon()
	return s.run(os.Args[1:], os.Stdin, keepaliveFD, signals)
}

// shim holds what every exit path needs.
type shim struct {
	stderr   io.Writer
	ready    *readyPipe // nil when nobody waits for readiness
	readyErr error      // fd 3 is open but unusable
	exitFile string     // "" until the spec names one
	level    logLevel   // lines above it are not written (LogLevelEnv)
	secrets  []string   // the spec's secret values: never in a line or an exit record
	// catching is closed once the signal handlers are installed: the
	// guest is not started, nor a line written, before.
	catching <-chan struct{}
}

// logAt writes one line to the shim's stderr (shim.log) when the shim's
// level lets it through: "TIME boxsup-shim[PID] LEVEL: text". Never pass it
// the spec, its JSON or a secret.
func (s *shim) logAt(level logLevel, format string, args ...any) {
	if level > s.level {
		return
	}
	s.awaitHandlers()
	fmt.Fprintf(s.stderr, "%s boxsup-shim[%d] %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), os.Getpid(), level, s.scrub(fmt.Sprintf(format, args...)))
}

// awaitHandlers waits until the signal handlers are installed (at once
// when the shim was built without the wait, in tests).
func (s *shim) awaitHandlers() {
	if s.catching != nil {
		<-s.catching
	}
}

// minSecretLen is the shortest secret value scrubbed from text; shorter
// ones would match ordinary text (the supervisor refuses them at Start).
const minSecretLen = 4

// scrub replaces every secret value of the spec in text (a failure's
// reason can quote the spec: an executable or working directory whose path
// holds a secret) with messages.Redacted.
func (s *shim) scrub(text string) string {
	return messages.ScrubSecrets(text, s.secrets) // the longest first
}

// writeExit writes the exit record, its reason scrubbed.
func (s *shim) writeExit(rec messages.ExitRecord) error {
	rec.Reason = s.scrub(rec.Reason)
	return writeExitRecord(s.exitFile, rec)
}

func (s *shim) errorf(format string, args ...any) { s.logAt(levelError, format, args...) }
func (s *shim) warnf(format string, args ...any)  { s.logAt(levelWarn, format, args...) }
func (s *shim) infof(format string, args ...any)  { s.logAt(levelInfo, format, args...) }
func (s *shim) debugf(format string, args ...any) { s.logAt(levelDebug, format, args...) }

// fail ends a shim that did not get its guest running: the exit record is
// written (when the spec named an exit file), the ready pipe closed without
// its byte, and code returned.
func (s *shim) fail(code int, reason string) int {
	s.errorf("%s", reason)
	if err := s.writeExit(failureRecord(code, reason)); err != nil {
		s.errorf("%v", err)
	}
	s.ready.abandon()
	return code
}

// run checks the command line and the spec, then runs the box.
func (s *shim) run(args []string, stdin *os.File, keepaliveFD inheritedFD, signals <-chan os.Signal) int {
	level, levelErr := shimLogLevel()
	s.level = level
	boxID, argErr := parseArgs(args)
	if argErr != nil && isTerminal(stdin) {
		// Run by hand with a wrong command line: do not wait for a spec
		// that nobody is going to type.
		return s.fail(ExitUsage, "usage: "+argErr.Error()+"\n"+usageText)
	}
	// Drain stdin first, even after a usage error, so that the writer is
	// never left blocked and the exit file can still be learnt.
	raw, readErr := readSpecBytes(stdin)
	var spec messages.InstanceSpec
	var decodeErr error
	if readErr == nil {
		spec, decodeErr = decodeSpec(raw)
		s.exitFile = exitFileOf(spec)
		s.secrets = spec.SecretValues()
	}
	clear(raw) // the JSON holds secrets; keep one copy (in spec), not two
	switch {
	case argErr != nil:
		return s.fail(ExitUsage, "usage: "+argErr.Error())
	case readErr != nil:
		return s.fail(ExitUsage, "bad spec: "+readErr.Error())
	case decodeErr != nil:
		return s.fail(ExitUsage, "bad spec: "+decodeErr.Error())
	case levelErr != nil:
		return s.fail(ExitUsage, "usage: "+levelErr.Error())
	}
	if err := checkSpec(&spec, boxID); err != nil {
		return s.fail(ExitUsage, "bad spec: "+err.Error())
	}
	s.debugf("box %s: spec read (%d bytes)", boxID, len(raw))
	return s.runBox(&spec, keepaliveFD, signals)
}

// runBox sets the box up, runs the guest to its end and records its exit.
func (s *shim) runBox(spec *messages.InstanceSpec, keepaliveFD inheritedFD, signals <-chan os.Signal) int {
	if s.readyErr != nil {
		return s.fail(ExitUsage, "usage: "+s.readyErr.Error())
	}
	shimLog, err := capShimLog(spec.ShimLog.WithDefaults(messages.DefaultShimLogMaxBytes, messages.DefaultShimLogMaxFiles))
	if err != nil {
		return s.fail(ExitUsage, "setup failed: shim_log: "+err.Error())
	}
	if shimLog != nil {
		// From here on the shim's lines go through the cap. The log stays
		// open until the process exits: its last line may come late.
		s.stderr = shimLog
	}
	grace, err := keepaliveGrace()
	if err != nil {
		return s.fail(ExitUsage, "usage: "+err.Error())
	}
	var keepalive *keepaliveWatch
	switch {
	case spec.Detach:
		if keepaliveFD.present {
			// A detached box has no keepalive; a pipe at fd 4 means
			// nothing. Close it so that it does not linger.
			_ = unix.Close(keepaliveFD.fd)
		}
	case !keepaliveFD.present:
		return s.fail(ExitUsage, "usage: fd 4 is not a keepalive pipe and the spec is not detached")
	case keepaliveFD.err != nil:
		return s.fail(ExitUsage, "usage: keepalive: "+keepaliveFD.err.Error())
	default:
		if keepalive, err = watchKeepalive(keepaliveFD); err != nil {
			return s.fail(ExitUsage, "setup failed: "+err.Error())
		}
		defer keepalive.stop()
	}

	console, err := openConsole(spec, s.warnf)
	if err != nil {
		return s.fail(ExitUsage, "setup failed: console_output: "+err.Error())
	}
	defer console.finish() // on the failure paths; a no-op after the one below

	var readySock *readySocket
	if spec.ReadyTransport != "" {
		if readySock, err = listenReadySocket(spec.ReadyTransport); err != nil {
			return s.fail(ExitUsage, "setup failed: "+err.Error())
		}
		defer readySock.close()
	}

	if spec.RestartInPlace && (s.ready == nil || !s.ready.socket) {
		return s.fail(ExitUsage, "usage: restart_in_place needs a socket at fd 3")
	}
	launch, err := guestCommand(spec, console.guestStdout, console.guestStderr)
	if err != nil {
		console.started()
		return s.fail(ExitExecFailed, "exec failed: "+err.Error())
	}
	s.awaitHandlers() // a stop request must never find a guest without a shim to relay it
	guest, se := startGuest(spec, launch)
	if !spec.RestartInPlace {
		// The next guest, if any, is another shim's: the console's write
		// ends are the guest's alone now, so that the pipes see EOF when it
		// and its children are gone.
		console.started()
	}
	if se != nil {
		return s.fail(se.code, se.reason)
	}
	var line *restartLine
	switch {
	case spec.RestartInPlace:
		// The byte first: the supervisor waits for it, not for the line.
		if f := s.ready.signalAndKeep(); f != nil {
			line = openRestartLine(f)
			defer line.close()
		}
	case readySock == nil:
		s.ready.signal()
	}
	// The lines come after the ready byte: the supervisor waits for the
	// byte, not for them.
	s.infof("box %s: shim starting (engine %s, %s, ready through %s, log level %s)",
		spec.BoxID, engineName(spec), attachment(spec), readyPath(spec), s.level)
	s.infof("box %s: guest started, pid %d", spec.BoxID, guest.pid)

	if readySock != nil {
		readySock.awaitConnection(func() {
			s.infof("guest connected to the ready socket: ready")
			s.ready.signal()
		})
	} else {
		s.infof("ready (the guest runs)")
	}

	ctl := newController(guest, signals, keepalive.Lost(), grace, s.logAt)
	done, ctlDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(ctlDone); ctl.run(done) }()

	rec, code, failure := s.superviseGuest(spec, launch, guest, ctl, line)
	close(done)
	<-ctlDone
	if readySock != nil {
		readySock.acceptPending() // it connected, then exited before we accepted
		readySock.close()
	}
	s.ready.abandon() // the guest ended before it was ready: no byte
	if failure != nil {
		return s.fail(failure.code, failure.reason)
	}
	if n := sweepProcessGroup(); n > 0 {
		s.warnf("killed %d leftover process(es) of the box's process group", n)
	}
	// Whatever the guest wrote is in the console's pipes now; it reaches
	// console_output before the exit record says the box is over.
	console.finish()
	if err := s.writeExit(rec); err != nil {
		s.errorf("%v", err)
	}
	s.debugf("exiting with code %d", code)
	return code
}

// superviseGuest waits for the guest to end and returns its exit record and
// the shim's exit code. With a restart line (restart_in_place), each time
// the guest ends on its own the shim asks the supervisor, and on its word
// starts the guest again in place (§16); it returns once the supervisor
// says to end, cannot be asked, or a stop was requested. failure is set
// when a restarted guest could not be started: the shim ends with it.
func (s *shim) superviseGuest(spec *messages.InstanceSpec, launch *guestLaunch, guest *childProc, ctl *controller, line *restartLine) (messages.ExitRecord, int, *startError) {
	for restarts := 1; ; restarts++ {
		// The wait parks this goroutine in the netpoller: no thread waits.
		ws, err := guest.wait()
		ctl.guestEnded()
		if err != nil {
			// Should not happen: the guest is our unreaped child.
			return messages.ExitRecord{}, 0, &startError{code: ExitUsage, reason: err.Error()}
		}
		rec, code := guestExitRecord(ws, ctl.stopCause())
		s.infof("guest pid %d ended: %s", guest.pid, rec.String())
		if line == nil || ctl.stopCause() != "" {
			return rec, code, nil
		}
		// The box's leftovers go before a new guest comes: the sweep
		// after it would kill the new one.
		if n := sweepProcessGroup(); n > 0 {
			s.warnf("killed %d leftover process(es) of the box's process group", n)
		}
		if !line.ask(rec, ctl.stopRequested()) {
			s.infof("the supervisor did not ask for a restart in place: ending")
			return rec, code, nil
		}
		next, se := startGuest(spec, launch)
		if se != nil {
			return rec, code, se
		}
		ctl.setGuest(next)
		line.started(next.pid)
		s.infof("guest restarted in place (restart %d), pid %d", restarts, next.pid)
		guest = next
	}
}

// engineName names the spec's engine for the shim's log.
func engineName(spec *messages.InstanceSpec) string {
	if spec.Engine == "" {
		return string(messages.EngineProcess)
	}
	return string(spec.Engine)
}

// attachment says whether the box outlives its supervisor.
func attachment(spec *messages.InstanceSpec) string {
	if spec.Detach {
		return "detached"
	}
	return "attached"
}

// readyPath says how readiness is signalled.
func readyPath(spec *messages.InstanceSpec) string {
	if spec.ReadyTransport != "" {
		return "the ready socket"
	}
	return "the guest's start"
}

// isTerminal reports whether f is a terminal. It asks the kernel through
// SyscallConn rather than f.Fd(), which would switch a non-blocking stdin
// (the supervisor's pipe) to blocking mode.
func isTerminal(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		tty = err == nil
	})
	return tty
}

// signalName names a signal for logs and reasons ("SIGTERM").
func signalName(sig syscall.Signal) string {
	if name := messages.SignalName(int(sig)); name != "" {
		return name
	}
	return sig.String()
}
