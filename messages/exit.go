package messages

import (
	"fmt"
	"time"
)

// ExitRecord is what a shim writes to its exit_file when it exits, and what
// boxsup reports as a box's final status. ExitCode is -1 when unknown; a
// process killed by signal N has ExitCode 128+N and Signal set, as a shell
// reports it.
type ExitRecord struct {
	ExitCode   int       `json:"exit_code"`
	Signal     string    `json:"signal"`           // "SIGKILL", or "" when the guest exited on its own
	Reason     string    `json:"reason"`           // human text: "exited", "killed after stop timeout", "exec failed: ..."
	FinishedAt time.Time `json:"finished_at"`      // RFC3339 in JSON
	Source     string    `json:"source,omitempty"` // where boxsup learned it: "wait", "exit_file", "shim", "none"
}

// Exit record sources.
const (
	SourceWait     = "wait"      // the supervisor reaped its own child
	SourceExitFile = "exit_file" // read from exit.json (adopted process)
	SourceShim     = "shim"      // a guest's exit its shim reported on the restart line (restarted in place)
	SourceNone     = "none"      // nothing known: "unknown (no exit record)"
)

// UnknownExit is the status of an adopted process that left no exit record.
func UnknownExit(at time.Time) ExitRecord {
	return ExitRecord{ExitCode: -1, Reason: "unknown (no exit record)", FinishedAt: at, Source: SourceNone}
}

// Known reports whether the exit code is known.
func (e ExitRecord) Known() bool { return e.ExitCode >= 0 || e.Signal != "" }

// ShellCode is the exit code a shell would report: the code, or 128+N for a
// signal. It returns -1 when nothing is known.
func (e ExitRecord) ShellCode() int {
	if e.Signal != "" {
		if n := SignalNumber(e.Signal); n > 0 {
			return 128 + n
		}
	}
	return e.ExitCode
}

// Success reports a clean exit (code 0, no signal).
func (e ExitRecord) Success() bool { return e.ExitCode == 0 && e.Signal == "" }

// String renders "exit 0", "signal SIGKILL (killed after stop timeout)" and the like.
func (e ExitRecord) String() string {
	var s string
	switch {
	case e.Signal != "":
		s = "signal " + e.Signal
	case e.ExitCode >= 0:
		s = fmt.Sprintf("exit %d", e.ExitCode)
	default:
		s = "unknown"
	}
	if e.Reason != "" && e.Reason != "exited" {
		s += " (" + e.Reason + ")"
	}
	return s
}

var signalNumbers = map[string]int{
	"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6,
	"SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12,
	"SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCONT": 18,
	"SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24,
	"SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29, "SIGPWR": 30,
	"SIGSYS": 31,
}

// SignalNumber maps a Linux signal name ("SIGTERM" or "TERM") to its number,
// or 0 when unknown. It lives here, without syscall, so that messages stays
// free of platform imports.
func SignalNumber(name string) int {
	if n, ok := signalNumbers[name]; ok {
		return n
	}
	return signalNumbers["SIG"+name]
}

// SignalName maps a Linux signal number to its name, or "" when unknown.
func SignalName(n int) string {
	for name, num := range signalNumbers {
		if num == n {
			return name
		}
	}
	return ""
}
