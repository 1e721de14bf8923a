package messages

import "time"

// BoxState is where a box is in its lifecycle. docs/ARCHITECTURE.md shows
// the diagram of every transition (generated from the actors' lifecycle
// table):
//
//	created → starting → running → stopping → exited
//	running → (exit) → restarting (backoff) → starting
//	starting | running → failed (start failed, ready timeout, restart limit)
//	any live state → unknown (the process could not be verified right now)
type BoxState string

// The box states.
const (
	StateCreated    BoxState = "created"
	StateStarting   BoxState = "starting"
	StateRunning    BoxState = "running"
	StateStopping   BoxState = "stopping"
	StateRestarting BoxState = "restarting"
	StateExited     BoxState = "exited"
	StateFailed     BoxState = "failed"
	// StateUnknown: the box's process could not be verified right now (a
	// transient error while reading /proc, or a damaged state.json). The box
	// is verified again with backoff and is never restarted meanwhile; it
	// stays stoppable and killable through its cgroup. It is reported in
	// BoxStatus only: state.json keeps the last verified state.
	StateUnknown BoxState = "unknown"
)

// Live reports whether a shim process may exist in this state.
func (s BoxState) Live() bool {
	return s == StateStarting || s == StateRunning || s == StateStopping || s == StateUnknown
}

// AtRest reports whether a box in this state will not change state on its
// own: it has exited or failed (or never started). A restarting box is not
// at rest: its restart policy will start it again.
func (s BoxState) AtRest() bool {
	return s == StateCreated || s == StateExited || s == StateFailed
}

// Valid reports whether s is one of the known states.
func (s BoxState) Valid() bool {
	switch s {
	case StateCreated, StateStarting, StateRunning, StateStopping, StateRestarting, StateExited, StateFailed, StateUnknown:
		return true
	}
	return false
}

// Identity names one process for its whole life: a PID alone is recycled, a
// PID with its start time (field 22 of /proc/PID/stat, clock ticks since
// boot) and the boot id is not.
type Identity struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	BootID    string `json:"boot_id"`
}

// Zero reports whether no process is recorded.
func (id Identity) Zero() bool { return id.PID == 0 }

// StateRecord is the content of a box's state.json. It is rewritten
// atomically on every transition, before the transition is answered or
// announced.
type StateRecord struct {
	ID         string   `json:"id"`
	State      BoxState `json:"state"`
	Generation uint64   `json:"generation"` // bumped on every spawn or adopt
	Identity   Identity `json:"identity"`   // the shim; zero when none
	// Cgroup is the generation's cgroup directory. It is written, with
	// SpawnToken and State starting, before the shim is spawned, so that a
	// supervisor that dies mid-spawn leaves the place to look for its shim.
	Cgroup string `json:"cgroup,omitempty"`
	// SpawnToken is a random value the generation's shim carries in its
	// environment (BOXSUP_SPAWN_TOKEN): without a cgroup, it identifies the
	// shim of an interrupted start among all processes.
	SpawnToken string `json:"spawn_token,omitempty"`
	// Detached records StartBox.Spec.Detach, so that a box whose spec.json
	// is lost is never taken for an attached one (and stopped). Nil in
	// records written before it existed: treated as detached.
	Detached *bool `json:"detached,omitempty"`
	Restarts int   `json:"restarts"`
	// RecentRestarts are the times of the restarts the policy granted within
	// its window, and BackoffStep the step its backoff has reached: the
	// intensity limit and the backoff hold across supervisors (each CLI
	// command that opens the home is one), not only within one.
	RecentRestarts []time.Time `json:"recent_restarts,omitempty"`
	BackoffStep    int         `json:"backoff_step,omitempty"`
	LastExit       *ExitRecord `json:"last_exit,omitempty"`
	// Killed: the last stop had to SIGKILL after its timeout.
	Killed bool `json:"killed,omitempty"`
	// Labels are the box's labels as last set (StartBox, UpdateBox).
	Labels    map[string]string `json:"labels,omitempty"`
	Reason    string            `json:"reason,omitempty"` // why failed/exited, for humans
	CreatedAt time.Time         `json:"created_at"`
	StartedAt time.Time         `json:"started_at,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// IsDetached reports whether the record says the box outlives its
// supervisor; a record that does not say is taken as detached, the choice
// that never stops a box on its own.
func (r StateRecord) IsDetached() bool { return r.Detached == nil || *r.Detached }
