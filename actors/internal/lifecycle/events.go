package lifecycle

import (
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Waiter identifies a caller waiting for a reply. The actor maps it to the
// caller; 0 means nobody.
type Waiter uint64

// Kind names a kind of event: the column of the lifecycle table.
type Kind uint8

// The event kinds.
const (
	KCreate Kind = iota
	KStart
	KStop
	KKill
	KRemove
	KAdopt
	KSignal
	KUpdate
	KCancelStart
	KLoaded
	KPrepared
	KSpecDurable
	KPersisted
	KSpawned
	KReady
	KProcExited
	KAdopted
	KKillDone
	KRemoved
	KKillTimer
	KRestartTimer
	KRetryTimer
	KKillRetryTimer
	KSpecWritten
	KHealth
	KHealthTimer
	KGuestExited
	KGuestStarted
	numKinds
)

var kindNames = [numKinds]string{
	KCreate: "Create", KStart: "Start", KStop: "Stop", KKill: "Kill", KRemove: "Remove", KAdopt: "Adopt",
	KSignal: "Signal", KUpdate: "Update", KCancelStart: "CancelStart", KSpecWritten: "SpecWritten", KLoaded: "Loaded", KPrepared: "Prepared",
	KSpecDurable: "SpecDurable", KPersisted: "Persisted", KSpawned: "Spawned", KReady: "Ready",
	KProcExited: "ProcExited", KAdopted: "Adopted", KKillDone: "KillDone", KRemoved: "Removed",
	KKillTimer: "KillTimer", KRestartTimer: "RestartTimer", KRetryTimer: "RetryTimer",
	KKillRetryTimer: "KillRetryTimer", KHealth: "Health", KHealthTimer: "HealthTimer",
	KGuestExited: "GuestExited", KGuestStarted: "GuestStarted",
}

// String names the kind.
func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind?"
}

// AllKinds lists every event kind.
func AllKinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// isRequest reports whether events of this kind come from a caller (they
// are deferred during transient phases) rather than from the actor's work.
func (k Kind) isRequest() bool { return k <= KCancelStart }

// Event is one input to a Machine.
type Event interface{ Kind() Kind }

// Options are a box's supervision settings, from its spec.json.
type Options struct {
	Engine      messages.EngineKind
	Restart     messages.RestartPolicy
	StopTimeout time.Duration // 0: messages.DefaultStopTimeout
	Detach      bool
	// Startable: the spec can start the box (false when spec.json is
	// missing or damaged: such a box can be adopted and stopped, not
	// started).
	Startable bool
	// Labels are the box's labels from its spec.
	Labels map[string]string
	// Health is the box's health check, nil when it has none.
	Health *messages.HealthCheck
	// ReadyWhen healthy makes a start wait, after the ready byte, for the
	// first passing check.
	ReadyWhen messages.ReadyCondition
	// ReadyTimeout bounds a start from its spawn to ready, and with
	// ReadyWhen healthy to its first passing check (0:
	// messages.DefaultReadyTimeout).
	ReadyTimeout time.Duration
}

// Settings are the supervision settings an Update may change; a nil field
// is left as it is, and Labels, when not nil, replaces the set. AddLabels
// and RemoveLabels change single keys of the set the box has when the
// update's turn comes (resolve turns them into Labels then).
type Settings struct {
	Restart      *messages.RestartPolicy
	StopTimeout  *time.Duration
	Labels       map[string]string
	AddLabels    map[string]string
	RemoveLabels []string
}

// resolve returns s with AddLabels and RemoveLabels applied to current and
// folded into Labels: the whole set to write.
func (s Settings) resolve(current map[string]string) Settings {
	if len(s.AddLabels) == 0 && len(s.RemoveLabels) == 0 {
		return s
	}
	s.Labels, _ = messages.UpdateBox{Labels: s.Labels, AddLabels: s.AddLabels, RemoveLabels: s.RemoveLabels}.NewLabels(current)
	s.AddLabels, s.RemoveLabels = nil, nil
	return s
}

// Requests.
type (
	// Create makes a fresh box (the actor's first event) and starts it.
	Create struct {
		W    Waiter
		Opts Options
	}
	// Start starts a box at rest again (StartExisting).
	Start struct{ W Waiter }
	// Stop stops the box: SIGTERM, then SIGKILL to the tree after Timeout
	// (0: the box's stop timeout). Cap, when positive, bounds the timeout;
	// a Stop with Now set kills at once (a shutdown with no time left).
	Stop struct {
		W       Waiter
		Timeout time.Duration
		Cap     time.Duration
		Now     bool
	}
	// Kill SIGKILLs the tree now.
	Kill struct{ W Waiter }
	// Remove deletes a box at rest; Force stops a live one first.
	Remove struct {
		W     Waiter
		Force bool
		// cancelled marks the removal of a fresh box whose start's context
		// ended: W is that start's caller, answered ErrStartCancelled.
		cancelled bool
	}
	// Adopt takes over process PID, started by another tool for this box.
	Adopt struct {
		W   Waiter
		PID int
	}
	// Signal sends one signal to the shim.
	Signal struct {
		W   Waiter
		Sig int
	}
	// Update changes the box's supervision settings in place (UpdateBox):
	// spec.json is rewritten first, then the change is recorded.
	Update struct {
		W   Waiter
		Set Settings
	}
	// CancelStart: the context of W's Start (or Create) ended before the
	// box was ready. The start is undone: the box is killed, and removed
	// when W's request created it.
	CancelStart struct{ W Waiter }
)

// Results of the actor's work.
type (
	// Loaded: what an existing box's files say. RecErr is set when
	// state.json is missing, damaged (a *messages.Error) or could not be
	// read right now (any other error: EMFILE, ENOMEM, EACCES, ...);
	// SpecErr likewise for spec.json.
	Loaded struct {
		Opts    Options
		SpecErr error
		Rec     messages.StateRecord
		RecErr  error
	}
	// Prepared: the new box's directory and spec.json are written.
	Prepared struct{ Err error }
	// SpecDurable: the new box's spec.json and directory were fsynced.
	SpecDurable struct{ Err error }
	// Persisted: the write of record Seq was attempted. Err nil means every
	// record up to Seq is on disk; otherwise the writer keeps retrying and
	// reports again.
	Persisted struct {
		Seq uint64
		Err error
	}
	// Spawned: the Spawn of generation Gen ended. Adopted means a shim of
	// this box was found still running and was adopted instead (it is
	// taken as ready).
	Spawned struct {
		Gen     uint64
		Proc    Proc
		Adopted bool
		Err     error
	}
	// Ready: the ready handshake of generation Gen ended: Err nil means the
	// ready byte came. On failure Exit is the shim's exit when it is known.
	Ready struct {
		Gen  uint64
		Err  error
		Exit *messages.ExitRecord
	}
	// ProcExited: generation Gen's shim (or, for a cgroup kill of an unverified
	// box, its cgroup) is gone.
	ProcExited struct {
		Gen  uint64
		Exit messages.ExitRecord
	}
	// Adopted: the verification of generation Gen ended.
	Adopted struct {
		Gen     uint64
		Outcome Outcome
		Proc    Proc                // Outcome == Verified
		Exit    messages.ExitRecord // Outcome == Vanished: what exit.json says, if anything
		Err     error               // why, for the other outcomes
	}
	// KillDone: the tree kill of generation Gen was carried out (Err nil)
	// or failed.
	KillDone struct {
		Gen uint64
		Err error
	}
	// Removed: the box directory was deleted (or the deletion failed).
	Removed struct {
		Err error
		// Hidden: the removal failed after the directory was hidden for
		// deletion (layout.ErrFilesLeft): nothing can be written for the box
		// any more, and only another removal finishes it.
		Hidden bool
	}
	// SpecWritten: the WriteSpec of an Update is durable (Err nil), or
	// failed.
	SpecWritten struct{ Err error }
	// Health: a probe of generation Gen's health check ended.
	Health struct {
		Gen    uint64
		Result messages.HealthResult
	}
	// GuestExited: generation Gen's shim, spawned with restart in place,
	// reports that its guest ended on its own, and waits for an
	// AnswerGuest: restart it in place, or end (docs/SHIM-PROTOCOL.md §16).
	GuestExited struct {
		Gen  uint64
		Exit messages.ExitRecord
	}
	// GuestStarted: generation Gen's shim started its guest again in place.
	GuestStarted struct {
		Gen uint64
		PID int // the new guest's
	}
)

// Timers.
type (
	// KillTimer fires when the stop timeout of generation Gen expires.
	KillTimer struct{ Gen uint64 }
	// RestartTimer fires when the restart backoff of generation Gen ends.
	RestartTimer struct{ Gen uint64 }
	// RetryTimer fires when an unknown box is to be verified again.
	RetryTimer struct{ Gen uint64 }
	// KillRetryTimer fires when a failed tree kill is to be tried again.
	KillRetryTimer struct{ Gen uint64 }
	// HealthTimer fires when the ready timeout of generation Gen, waiting
	// for its first passing health check, expires.
	HealthTimer struct{ Gen uint64 }
)

// Outcome is what a verification found.
type Outcome uint8

// The verification outcomes. Only Gone and Mismatch are verdicts about the
// recorded process; Unverified means nothing is known yet.
const (
	// Verified: the process is the box's shim and was adopted.
	Verified Outcome = iota
	// Vanished: the process no longer exists (ESRCH), or no shim of the box was
	// found where an interrupted start would have left it.
	Vanished
	// Mismatch: the recorded PID now names another process (its start time
	// or boot id differ), or the handed-over process is not a shim of this
	// box. That process is never signalled.
	Mismatch
	// Unverified: a transient error (EMFILE, ENOMEM, EACCES, ...) prevented
	// the check.
	Unverified
)

// Proc describes a generation's shim process.
type Proc struct {
	Identity messages.Identity
	Cgroup   string // "" when the box has none
}

// Kind implementations.
func (Create) Kind() Kind         { return KCreate }
func (Start) Kind() Kind          { return KStart }
func (Stop) Kind() Kind           { return KStop }
func (Kill) Kind() Kind           { return KKill }
func (Remove) Kind() Kind         { return KRemove }
func (Adopt) Kind() Kind          { return KAdopt }
func (Signal) Kind() Kind         { return KSignal }
func (Update) Kind() Kind         { return KUpdate }
func (SpecWritten) Kind() Kind    { return KSpecWritten }
func (CancelStart) Kind() Kind    { return KCancelStart }
func (Loaded) Kind() Kind         { return KLoaded }
func (Prepared) Kind() Kind       { return KPrepared }
func (SpecDurable) Kind() Kind    { return KSpecDurable }
func (Persisted) Kind() Kind      { return KPersisted }
func (Spawned) Kind() Kind        { return KSpawned }
func (Ready) Kind() Kind          { return KReady }
func (ProcExited) Kind() Kind     { return KProcExited }
func (Adopted) Kind() Kind        { return KAdopted }
func (KillDone) Kind() Kind       { return KKillDone }
func (Removed) Kind() Kind        { return KRemoved }
func (KillTimer) Kind() Kind      { return KKillTimer }
func (RestartTimer) Kind() Kind   { return KRestartTimer }
func (RetryTimer) Kind() Kind     { return KRetryTimer }
func (KillRetryTimer) Kind() Kind { return KKillRetryTimer }
func (Health) Kind() Kind         { return KHealth }
func (HealthTimer) Kind() Kind    { return KHealthTimer }
func (GuestExited) Kind() Kind    { return KGuestExited }
func (GuestStarted) Kind() Kind   { return KGuestStarted }

// waiterOf returns the caller of a request event, or 0.
func waiterOf(ev Event) Waiter {
	switch e := ev.(type) {
	case Create:
		return e.W
	case Start:
		return e.W
	case Stop:
		return e.W
	case Kill:
		return e.W
	case Remove:
		return e.W
	case Adopt:
		return e.W
	case Signal:
		return e.W
	case Update:
		return e.W
	case CancelStart:
		return e.W
	}
	return 0
}
