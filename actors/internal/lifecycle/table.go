package lifecycle

import "fmt"

// row is one line of the lifecycle table: what an event of kind on does in
// the phases from, and the phases it may lead to (besides staying).
type row struct {
	from []Phase
	on   Kind
	to   []Phase
	do   func(*Machine, Event) Phase
	what string // shown in the diagram
}

// Phase groups used by the table.
var (
	transientPhases = []Phase{Loading, Creating, Spawning, Adopting}
	restPhases      = []Phase{Created, Exited, Failed}
	nobody          = []Phase{Empty, Gone}
)

// phases concatenates phase groups.
func phases(groups ...[]Phase) []Phase {
	var out []Phase
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// one makes a group of single phases.
func one(ps ...Phase) []Phase { return ps }

// allBut returns every phase except those listed.
func allBut(except ...Phase) []Phase {
	var out []Phase
	for _, p := range AllPhases() {
		skip := false
		for _, e := range except {
			skip = skip || p == e
		}
		if !skip {
			out = append(out, p)
		}
	}
	return out
}

// table is the lifecycle: every (phase, kind) pair appears in exactly one
// row (TestTableIsComplete). Requests that come during a transient phase
// are deferred and replayed, in order, when it ends; timers and results of
// an older generation are ignored by the handlers that check Gen.
var table = []row{
	// Create
	{one(Empty), KCreate, one(Creating), onCreate, "write the box directory and spec.json"},
	{allBut(Empty), KCreate, nil, replyAlreadyExists, "ErrAlreadyExists"},

	// Start (StartExisting)
	{transientPhases, KStart, nil, deferRequest, "deferred"},
	{restPhases, KStart, one(Intent), onStartAtRest, "new generation (ErrBadSpec without a usable spec)"},
	{one(Restarting), KStart, one(Intent, Restarting), onStartRestarting, "start now, restart history cleared (ErrBusy while a host shortage is waited out)"},
	{one(Intent, AwaitReady, AwaitHealthy), KStart, nil, joinStart, "joins the start"},
	{one(Running), KStart, nil, replyStatus, "already running"},
	{one(Stopping, Killing), KStart, nil, replyBusy, "ErrBusy"},
	{one(Unknown), KStart, nil, replyUnverified, "ErrUnverified"},
	{phases(one(Removing), nobody), KStart, nil, replyNotFound, "ErrNotFound"},

	// Stop
	{transientPhases, KStop, nil, deferRequest, "deferred"},
	{restPhases, KStop, nil, replyStatus, "nothing to stop"},
	{one(Intent), KStop, one(Exited), onStopBeforeSpawn, "stopped before it started"},
	{one(AwaitReady, AwaitHealthy, Running), KStop, one(Stopping, Killing, Exited), onStop, "SIGTERM, arm the kill timer"},
	{one(Stopping), KStop, one(Killing), onStopAgain, "joins; an earlier deadline re-arms the timer"},
	{one(Killing), KStop, nil, joinStop, "joins"},
	{one(Restarting), KStop, one(Exited), onStopRestarting, "restart cancelled"},
	{one(Unknown), KStop, one(Killing), onStopUnknown, "kill its cgroup, else (or files unread) ErrUnverified"},
	{one(Removing), KStop, nil, replyStatus, "nothing to stop"},
	{nobody, KStop, nil, replyNotFound, "ErrNotFound"},

	// Kill
	{transientPhases, KKill, nil, deferRequest, "deferred"},
	{restPhases, KKill, nil, replyStatus, "nothing to kill"},
	{one(Intent), KKill, one(Exited), onStopBeforeSpawn, "stopped before it started"},
	{one(AwaitReady, AwaitHealthy, Running, Stopping), KKill, one(Killing, Exited), onKill, "SIGKILL the tree"},
	{one(Killing), KKill, nil, joinStop, "joins"},
	{one(Restarting), KKill, one(Exited), onStopRestarting, "restart cancelled"},
	{one(Unknown), KKill, one(Killing), onStopUnknown, "kill its cgroup, else (or files unread) ErrUnverified"},
	{one(Removing), KKill, nil, replyStatus, "nothing to kill"},
	{nobody, KKill, nil, replyNotFound, "ErrNotFound"},

	// Remove
	{transientPhases, KRemove, nil, deferRequest, "deferred"},
	{restPhases, KRemove, one(Removing), onRemoveAtRest, "delete the directory"},
	{one(Intent), KRemove, one(Exited), onRemoveIntent, "force: stopped before it started, then removed"},
	{one(AwaitReady, AwaitHealthy, Running), KRemove, one(Stopping, Killing, Exited), onRemoveLive, "force: stop, then remove; else ErrBusy"},
	{one(Stopping, Killing), KRemove, nil, onRemoveStopping, "force: removed once stopped; else ErrBusy"},
	{one(Restarting), KRemove, one(Exited), onRemoveRestarting, "restart cancelled, then removed"},
	{one(Unknown), KRemove, one(Killing), onRemoveUnknown, "force: kill its cgroup, then remove; else ErrBusy"},
	{one(Removing), KRemove, nil, joinRemove, "joins"},
	{nobody, KRemove, nil, replyNotFound, "ErrNotFound"},

	// Adopt (a handed-over PID)
	{transientPhases, KAdopt, nil, deferRequest, "deferred"},
	{restPhases, KAdopt, one(Adopting), onAdoptRequest, "verify the process"},
	{one(Intent, AwaitReady, AwaitHealthy, Running, Stopping, Killing, Restarting, Unknown), KAdopt, nil, replyBusy, "ErrBusy"},
	{phases(one(Removing), nobody), KAdopt, nil, replyNotFound, "ErrNotFound"},

	// Signal
	{transientPhases, KSignal, nil, deferRequest, "deferred"},
	{one(AwaitReady, AwaitHealthy, Running, Stopping, Killing), KSignal, nil, onSignal, "through the pidfd"},
	{phases(restPhases, one(Intent, Restarting, Unknown, Removing)), KSignal, nil, replyNotRunning, "ErrNotRunning"},
	{nobody, KSignal, nil, replyNotFound, "ErrNotFound"},

	// Update (supervision settings, in place)
	{transientPhases, KUpdate, nil, deferRequest, "deferred"},
	{allBut(Loading, Creating, Spawning, Adopting, Removing, Empty, Gone), KUpdate, nil, onUpdate, "rewrite spec.json, then the record (files unread: ErrUnverified)"},
	{phases(one(Removing), nobody), KUpdate, nil, replyNotFound, "ErrNotFound"},
	{AllPhases(), KSpecWritten, nil, onSpecWritten, "record the update, or refuse it"},

	// CancelStart (the context of a start ended before ready)
	{transientPhases, KCancelStart, nil, deferRequest, "deferred"},
	{one(Intent), KCancelStart, one(Exited), onCancelIntent, "undo: nothing spawned"},
	{one(AwaitReady, AwaitHealthy), KCancelStart, one(Killing, Exited), onCancelAwaiting, "undo: kill, then remove a fresh box"},
	{allBut(Loading, Creating, Spawning, Adopting, Intent, AwaitReady, AwaitHealthy), KCancelStart, nil, ignore, "too late: already answered"},

	// Results of the actor's work.
	{one(Loading), KLoaded, one(Adopting, Restarting, Created, Exited, Failed, Unknown), onLoaded, "reconcile with what runs; unreadable files: unknown"},
	{allBut(Loading), KLoaded, nil, ignore, "stale"},
	{one(Creating), KPrepared, one(Intent, Gone), onCreated, "start, or give up"},
	{allBut(Creating), KPrepared, nil, ignore, "stale"},
	{AllPhases(), KSpecDurable, nil, onSpecDurable, "release held announcements"},
	{one(Intent), KPersisted, one(Spawning), onPersistedIntent, "spawn once the intent is on disk"},
	{allBut(Intent), KPersisted, nil, onPersisted, "announce"},
	{one(Spawning), KSpawned, one(AwaitReady, Running, Failed, Restarting, Exited, Unknown), onSpawned, "watch for ready"},
	{allBut(Spawning), KSpawned, nil, ignore, "stale"},
	{one(AwaitReady), KReady, one(AwaitHealthy, Running, Failed, Killing, Restarting, Exited), onReady, "ready (or wait for healthy), or the start failed"},
	{one(Stopping, Killing), KReady, one(Exited, Failed, Restarting), onReadyWhileStopping, "an exit it carries ends the stop"},
	{allBut(AwaitReady, Stopping, Killing), KReady, nil, ignore, "too late"},
	{one(AwaitReady), KProcExited, nil, onExitBeforeReady, "held until the ready result"},
	{one(AwaitHealthy), KProcExited, one(Failed, Restarting, Exited), onExitAwaitingHealthy, "the start failed (a restart: the policy judges)"},
	{one(Running), KProcExited, one(Restarting, Failed, Exited), onRunningExit, "the restart policy judges"},
	{one(Stopping, Killing), KProcExited, one(Exited, Failed, Restarting), onStopExit, "stopped (an unhealthy stop: the policy judges)"},
	{one(Failed), KProcExited, nil, onLateExit, "records the exit of a failed start"},
	{allBut(AwaitReady, AwaitHealthy, Running, Stopping, Killing, Failed), KProcExited, nil, ignore, "stale"},
	{one(Adopting), KAdopted, one(Running, Stopping, Killing, Restarting, Exited, Failed, Created, Unknown), onAdopted, "verified, gone, mismatched or unverified"},
	{allBut(Adopting), KAdopted, nil, onStaleAdopted, "stale: let go of it"},
	{one(Killing), KKillDone, nil, onKillDone, "retry a failed kill"},
	{allBut(Killing), KKillDone, nil, ignore, "stale"},
	{one(Removing), KRemoved, one(Gone, Created, Exited, Failed), onRemoved, "gone, or back at rest"},
	{allBut(Removing), KRemoved, nil, ignore, "stale"},

	// A guest restarted in place by its shim (docs/SHIM-PROTOCOL.md §16).
	{one(Running), KGuestExited, nil, onGuestExited, "the policy judges: restart in place once the exit is on disk, else the shim ends"},
	{allBut(Running), KGuestExited, nil, refuseGuestRestart, "the shim ends"},
	{one(Running), KGuestStarted, nil, onGuestStarted, "ready again, same generation"},
	{allBut(Running), KGuestStarted, nil, ignore, "stale"},

	// Timers. A timer of an older generation (cancelled, but already
	// queued) is ignored by its handler.
	{one(Stopping), KKillTimer, one(Killing, Exited, Failed, Restarting), onKillTimer, "timeout: SIGKILL the tree"},
	{allBut(Stopping), KKillTimer, nil, ignore, "stale"},
	{one(Restarting), KRestartTimer, one(Intent), onRestartTimer, "new generation"},
	{allBut(Restarting), KRestartTimer, nil, ignore, "stale"},
	{one(Unknown), KRetryTimer, one(Adopting, Loading), onRetryTimer, "verify (or read the files) again"},
	{allBut(Unknown), KRetryTimer, nil, ignore, "stale"},
	{one(Killing), KKillRetryTimer, nil, onKillRetryTimer, "kill again"},
	{allBut(Killing), KKillRetryTimer, nil, ignore, "stale"},
	{one(AwaitHealthy), KHealthTimer, one(Killing, Stopping, Exited, Failed), onHealthTimer, "ready timeout: the start failed"},
	{allBut(AwaitHealthy), KHealthTimer, nil, ignore, "stale"},

	// Health check results (a box with a check, AwaitHealthy or Running).
	{one(AwaitHealthy), KHealth, one(Running, Killing, Stopping, Exited, Failed), onHealthAwaiting, "first pass: running; unhealthy: the start failed"},
	{one(Running), KHealth, one(Stopping, Exited), onHealthRunning, "unhealthy under on-unhealthy: stop to restart"},
	{allBut(AwaitHealthy, Running), KHealth, nil, ignore, "stale"},
}

// index maps (phase, kind) to its row.
var index = func() [numPhases][numKinds]*row {
	var idx [numPhases][numKinds]*row
	for i := range table {
		r := &table[i]
		for _, p := range r.from {
			if idx[p][r.on] != nil {
				panic(fmt.Sprintf("lifecycle: (%s, %s) has two rows", p, r.on))
			}
			idx[p][r.on] = r
		}
	}
	return idx
}()

// lookup returns the row for (p, k); a missing row is a bug that
// TestTableIsComplete catches, and is answered by ignoring the event.
func lookup(p Phase, k Kind) *row {
	if r := index[p][k]; r != nil {
		return r
	}
	return &row{do: ignore}
}
