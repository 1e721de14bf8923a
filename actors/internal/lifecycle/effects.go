package lifecycle

import (
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Effect is one thing the actor must do for its machine. Effects are carried
// out in the order they were emitted.
type Effect interface{ effect() }

// Effects.
type (
	// Load reads the box's spec.json and state.json again (reported as
	// Loaded), after they could not be read.
	Load struct{}
	// CreateBox writes the new box's directory and spec.json, then makes
	// them durable (reported as Prepared, then SpecDurable).
	CreateBox struct{}
	// Persist writes Rec to state.json as record Seq (reported as
	// Persisted). Writes coalesce: a later record makes an earlier one moot.
	Persist struct {
		Seq uint64
		Rec messages.StateRecord
	}
	// Spawn starts generation Gen's shim in cgroup Cgroup ("" for none)
	// with Token in its environment, first making sure that no process of
	// the box is left in its cgroup (a live shim of the box found there is
	// adopted instead). Reported as Spawned. RestartInPlace offers the
	// shim to restart its guest in place (GuestExited, AnswerGuest) when
	// its engine honours it.
	Spawn struct {
		Gen            uint64
		Cgroup         string
		Token          string
		RestartInPlace bool
	}
	// Watch follows generation Gen's shim: the outcome of its ready
	// handshake (Ready), then its exit (ProcExited), in that order.
	Watch struct{ Gen uint64 }
	// WatchExit follows an adopted shim's exit (ProcExited).
	WatchExit struct{ Gen uint64 }
	// SendSignal sends Sig to generation Gen's shim through its pidfd. A
	// failure other than "already gone" is reported as a KillTimer for Gen
	// (kill now).
	SendSignal struct {
		Gen    uint64
		Sig    int
		W      Waiter // when set, answered with the outcome (a caller's Signal)
		Status messages.BoxStatus
	}
	// KillTree SIGKILLs generation Gen's whole tree (its cgroup, else its
	// process group while the leader is verified). Reported as KillDone.
	KillTree struct{ Gen uint64 }
	// KillCgroup SIGKILLs everything in Cgroup, which lies under this home's
	// cgroup parent, without a verified process, and reports ProcExited for Gen
	// once the cgroup is empty (KillDone with an error if it fails).
	KillCgroup struct {
		Gen    uint64
		Cgroup string
	}
	// Verify verifies and adopts a process for generation Gen (reported as
	// Adopted): the recorded Identity; else, when Identity is zero, a shim
	// of the box found in Cgroup, or by Token, or by its command line and
	// working directory; or, when PID is set, that handed-over process.
	Verify struct {
		Gen      uint64
		Identity messages.Identity
		Cgroup   string
		Token    string
		PID      int
		// StartedAt is when the recorded generation started: an exit.json
		// older than that is another run's.
		StartedAt time.Time
	}
	// Release lets go of generation Gen's process after its exit: the pidfd
	// is closed, the keepalive dropped and the generation's cgroup Cgroup
	// (when not "") removed once empty.
	Release struct {
		Gen    uint64
		Cgroup string
	}
	// Arm schedules a timer event after Delay. A timer of the same type that
	// is armed already is replaced.
	Arm struct {
		Timer Event
		Delay time.Duration
	}
	// Disarm cancels the timer of Timer's type, if armed. A cancelled timer
	// may still arrive: the table ignores stale timers.
	Disarm struct{ Timer Event }
	// Reply answers caller W with Status (Status.Err set on failure).
	Reply struct {
		W      Waiter
		Status messages.BoxStatus
	}
	// Publish puts Event on the event stream.
	Publish struct{ Event messages.Event }
	// Notify tells the root the box's new status (after each committed
	// transition); Initial marks the first status after a load.
	Notify struct {
		Status  messages.BoxStatus
		Initial bool
	}
	// RemoveDir deletes the box directory and its cgroups (reported as
	// Removed).
	RemoveDir struct{}
	// StartChecks begins probing generation Gen's health check (its
	// results come as Health events); Since is when the generation's
	// checks began (its ready byte, or, for an adopted generation, its
	// start), from which the start period counts.
	StartChecks struct {
		Gen   uint64
		Since time.Time
	}
	// StopChecks ends the box's probes; a probe in flight is cancelled and
	// its result dropped.
	StopChecks struct{}
	// WriteSpec rewrites spec.json, durably, with Set applied to the box's
	// stored request (reported as SpecWritten).
	WriteSpec struct{ Set Settings }
	// End ends the box for good: the root answers Waiters with their
	// statuses once the actor has stopped.
	End struct{ Replies []Reply }
	// AnswerGuest answers generation Gen's shim, which asked whether to
	// restart its guest in place (GuestExited): Restart, or end.
	AnswerGuest struct {
		Gen     uint64
		Restart bool
	}
	// Log reports something a person should know; it is not an error of
	// the machine.
	Log struct {
		Level  string // "info", "warn" or "error"
		Msg    string
		Err    error
		Fields map[string]any
	}
)

func (Load) effect()        {}
func (CreateBox) effect()   {}
func (Persist) effect()     {}
func (Spawn) effect()       {}
func (Watch) effect()       {}
func (WatchExit) effect()   {}
func (SendSignal) effect()  {}
func (KillTree) effect()    {}
func (KillCgroup) effect()  {}
func (Verify) effect()      {}
func (Release) effect()     {}
func (Arm) effect()         {}
func (Disarm) effect()      {}
func (Reply) effect()       {}
func (Publish) effect()     {}
func (Notify) effect()      {}
func (RemoveDir) effect()   {}
func (WriteSpec) effect()   {}
func (StartChecks) effect() {}
func (StopChecks) effect()  {}
func (End) effect()         {}
func (Log) effect()         {}
func (AnswerGuest) effect() {}
