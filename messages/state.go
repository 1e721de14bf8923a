package messages

import "time"

// BoxState is where a box is in its lifecycle (design.md §4):
//
//	created → starting → running → stopping → exited
//	running → exited (crash) → restarting (backoff) → starting
//	any → failed (start failed, ready timeout, restart intensity exceeded)
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
)

// Live reports whether a shim process may exist in this state.
func (s BoxState) Live() bool {
	return s == StateStarting || s == StateRunning || s == StateStopping
}

// Valid reports whether s is one of the known states.
func (s BoxState) Valid() bool {
	switch s {
	case StateCreated, StateStarting, StateRunning, StateStopping, StateRestarting, StateExited, StateFailed:
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
	ID         string      `json:"id"`
	State      BoxState    `json:"state"`
	Generation uint64      `json:"generation"` // bumped on every spawn or adopt
	Identity   Identity    `json:"identity"`   // the shim; zero when none
	Cgroup     string      `json:"cgroup,omitempty"`
	Restarts   int         `json:"restarts"`
	LastExit   *ExitRecord `json:"last_exit,omitempty"`
	Reason     string      `json:"reason,omitempty"` // why failed/exited, for humans
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  time.Time   `json:"started_at,omitempty"`
	UpdatedAt  time.Time   `json:"updated_at"`
}
