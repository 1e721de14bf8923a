package lifecycle

// Phase is where a box's machine is: the box state it reports plus what is
// in flight. Several phases report the same messages.BoxState (Intent,
// Spawning and AwaitReady are all "starting").
type Phase uint8

// The phases.
const (
	// Empty: a fresh actor waiting for the request that creates its box.
	Empty Phase = iota
	// Loading: an existing box's spec.json and state.json are being read.
	Loading
	// Creating: a new box's directory and spec.json are being written.
	Creating
	// Created: the box exists and never ran.
	Created
	// Intent: starting; the new generation (its cgroup, its spawn token) is
	// being written to state.json. Nothing is spawned before it is on disk.
	Intent
	// Spawning: starting; the shim is being forked (or a shim of this box
	// that is still running is being adopted instead).
	Spawning
	// AwaitReady: starting; the shim runs, its ready byte has not come.
	AwaitReady
	// AwaitHealthy: starting; the ready byte came, and the box waits for
	// its first passing health check (ready_when: healthy).
	AwaitHealthy
	// Running: the shim signalled ready (or was adopted).
	Running
	// Stopping: SIGTERM was sent; the kill timer is armed.
	Stopping
	// Killing: the tree was SIGKILLed; waiting for the exit.
	Killing
	// Restarting: the restart policy granted a restart; waiting for the
	// backoff timer.
	Restarting
	// Exited: at rest after an exit, a stop or a start that never ran.
	Exited
	// Failed: at rest; the start failed or the restart limit was hit.
	Failed
	// Adopting: a recorded, found or handed-over process is being verified.
	Adopting
	// Unknown: the process could not be verified right now; a retry is
	// armed. Never restarted; killable through its cgroup.
	Unknown
	// Removing: the box directory is being deleted.
	Removing
	// Gone: the box ended for good; the actor is being stopped.
	Gone
	numPhases
)

var phaseNames = [numPhases]string{
	Empty: "empty", Loading: "loading", Creating: "creating", Created: "created", Intent: "intent",
	Spawning: "spawning", AwaitReady: "await-ready", AwaitHealthy: "await-healthy", Running: "running", Stopping: "stopping",
	Killing: "killing", Restarting: "restarting", Exited: "exited", Failed: "failed",
	Adopting: "adopting", Unknown: "unknown", Removing: "removing", Gone: "gone",
}

// StartInFlight reports whether a start is under way in phase p: from the
// new box's files to the first ready (or healthy) signal.
func (p Phase) StartInFlight() bool {
	switch p {
	case Creating, Intent, Spawning, AwaitReady, AwaitHealthy:
		return true
	}
	return false
}

// String names the phase.
func (p Phase) String() string {
	if p < numPhases {
		return phaseNames[p]
	}
	return "phase?"
}

// AllPhases lists every phase, in declaration order.
func AllPhases() []Phase {
	out := make([]Phase, numPhases)
	for i := range out {
		out[i] = Phase(i)
	}
	return out
}

// atRest reports whether no process of the box exists and none will be
// started without a request.
func (p Phase) atRest() bool { return p == Created || p == Exited || p == Failed }

// transient reports whether the phase waits for one result of the actor's
// own work that cannot be interrupted: requests that arrive meanwhile are
// deferred and replayed, in order, when it ends.
func (p Phase) transient() bool {
	return p == Loading || p == Creating || p == Spawning || p == Adopting
}
