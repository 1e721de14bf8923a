package shim

import (
	"fmt"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// Exit codes the shim uses for itself. Otherwise the shim exits with the
// guest's own exit code, or 128+N when the guest died of signal N, as a shell
// would report it.
const (
	// ExitUsage: bad argv, a bad spec, a missing keepalive pipe, or a set-up
	// step before the guest was started failed (console or ready socket).
	ExitUsage = 125
	// ExitExecFailed: the guest could not be executed (not found, not
	// executable, bad work_dir).
	ExitExecFailed = 127
)

// Exit reasons written to exit.json. Reasons that carry details are built by
// the functions that produce them ("bad spec: ...", "exec failed: ...").
const (
	reasonExited        = "exited"
	reasonSignal        = "signal"
	reasonKeepaliveLost = "keepalive lost: supervisor gone"
)

// exitFileMode is exit.json's permission: it holds no secret, and tools that
// inspect a box (possibly as another user) may read it.
const exitFileMode = 0o644

// guestExitRecord turns the guest's wait status into the exit record and the
// shim's own exit code. cause, when set, is why the guest was stopped (a
// supervisor request or the keepalive) and replaces the plain reason.
func guestExitRecord(ws syscall.WaitStatus, cause string) (messages.ExitRecord, int) {
	rec := messages.ExitRecord{FinishedAt: time.Now().UTC()}
	switch {
	case ws.Signaled():
		n := int(ws.Signal())
		rec.ExitCode = 128 + n
		rec.Signal = messages.SignalName(n)
		rec.Reason = reasonSignal
		if ws.CoreDump() {
			rec.Reason += " (core dumped)"
		}
	default:
		rec.ExitCode = ws.ExitStatus()
		rec.Reason = reasonExited
	}
	if cause != "" {
		rec.Reason = cause
	}
	return rec, rec.ExitCode
}

// failureRecord is the exit record of a shim that never ran its guest, or
// whose guest could not be executed.
func failureRecord(code int, reason string) messages.ExitRecord {
	return messages.ExitRecord{ExitCode: code, Reason: reason, FinishedAt: time.Now().UTC()}
}

// writeExitRecord writes rec to path atomically (temp file, rename), so a
// reader sees the whole record or none. It does not fsync: the record matters
// to a supervisor on the same boot only (after a power loss the boot id
// differs and the box is reported lost anyway), and the two fsyncs would sit
// between the guest's exit and the shim's, on every stop. An empty path
// means the spec asked for no exit file. The shim never removes exit.json:
// the supervisor rotates it before each spawn (layout.Box.RotateExit).
func writeExitRecord(path string, rec messages.ExitRecord) error {
	if path == "" {
		return nil
	}
	if err := layout.WriteJSONVolatile(path, rec, exitFileMode); err != nil {
		return fmt.Errorf("exit_file: %w", err)
	}
	return nil
}
