package messages

import "time"

// StartBox creates a box and starts it. The reply (a BoxStatus) comes when
// the box is ready, or when the start failed: never at "spawned". An ID that
// exists already, in any state, is messages.ErrAlreadyExists: remove the box
// first to reuse its name.
type StartBox struct {
	ID           string        `json:"id"`
	Spec         InstanceSpec  `json:"spec"`
	Restart      RestartPolicy `json:"restart"`
	StopTimeout  time.Duration `json:"stop_timeout"`  // used by restarts, shutdown and Remove{Force}; 0 = DefaultStopTimeout
	ReadyTimeout time.Duration `json:"ready_timeout"` // 0 = DefaultReadyTimeout
}

// StartExisting starts an existing box that is at rest (exited, failed or
// never started) again, from its stored spec, under a new generation. The
// reply (a BoxStatus) comes when it is ready or failed. A box that is running
// already is answered at once; one that is starting, stopping or being
// removed is ErrBusy.
type StartExisting struct {
	ID string `json:"id"`
}

// Stop stops a box gracefully: SIGTERM now, SIGKILL to the whole tree after
// Timeout (0 = the box's StopTimeout). The reply (a BoxStatus) comes after the
// shim has exited and carries the exit record. Stopping a stopped box answers
// at once.
type Stop struct {
	ID      string        `json:"id"`
	Timeout time.Duration `json:"timeout"`
}

// Kill sends SIGKILL to the box's whole tree (its cgroup, else its process
// group) now. The reply (a BoxStatus) comes after the shim has exited and
// carries the exit record; killing a box that is not running answers at once.
// (The kill a Stop schedules after its timeout is internal to the box actor.)
type Kill struct {
	ID string `json:"id"`
}

// SignalBox sends one signal to the shim (not the tree) through its pidfd,
// e.g. SIGHUP to reload. Use Stop or Kill to end a box.
type SignalBox struct {
	ID     string `json:"id"`
	Signal string `json:"signal"` // "SIGHUP", "HUP" or a number as text
}

// Remove deletes an exited or failed box's directory. With Force a live box
// is stopped first (its StopTimeout). Without it a live box is ErrBusy.
type Remove struct {
	ID    string `json:"id"`
	Force bool   `json:"force"`
}

// Adopt hands over a running shim that another tool started for an existing
// box at rest (created, exited or failed): the process PID is verified (a
// pidfd is opened first, then its argv must be `SHIM --box-id ID`) and
// adopted, and the reply (a BoxStatus) says running; otherwise it is refused
// with ErrIdentityMismatch (not a shim of this box), ErrNotFound (no such
// process or box) or ErrBusy (the box is not at rest), and nothing is
// signalled. (Box actors adopt the shims recorded in state.json by
// themselves, without this message.)
type Adopt struct {
	ID  string `json:"id"`
	PID int    `json:"pid"`
}

// StatusRequest asks for one box's status; the reply is a BoxStatus.
type StatusRequest struct {
	ID string `json:"id"`
}

// ListRequest asks the root for every box's status; the reply is a ListResponse.
type ListRequest struct{}

// ListResponse lists boxes sorted by ID.
type ListResponse struct {
	Boxes []BoxStatus `json:"boxes"`
}

// BoxStatus is the reply to StartBox, Stop, Kill, SignalBox, Remove and
// StatusRequest. Err is set when the request failed; the other fields then
// describe the box as it is (or are zero for an unknown box).
type BoxStatus struct {
	ID         string      `json:"id"`
	State      BoxState    `json:"state"`
	Engine     EngineKind  `json:"engine,omitempty"`
	PID        int         `json:"pid"`
	Generation uint64      `json:"generation"`
	Restarts   int         `json:"restarts"`
	Detached   bool        `json:"detached,omitempty"`
	LastExit   *ExitRecord `json:"last_exit,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	Killed     bool        `json:"killed,omitempty"` // the last stop had to SIGKILL after its timeout
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  time.Time   `json:"started_at,omitempty"`
	Err        *Error      `json:"error,omitempty"`
}

// MetricsRequest asks one box for a metrics sample; the reply is a
// MetricsResponse.
type MetricsRequest struct {
	ID string `json:"id"`
}

// MetricsAllRequest asks the root for a sample of every live box; the reply is
// a MetricsAllResponse.
type MetricsAllRequest struct{}

// MetricsResponse carries one sample, or Err.
type MetricsResponse struct {
	Metrics BoxMetrics `json:"metrics"`
	Err     *Error     `json:"error,omitempty"`
}

// MetricsAllResponse carries one sample per live box, sorted by ID.
type MetricsAllResponse struct {
	Boxes []BoxMetrics `json:"boxes"`
}

// BoxMetrics is one sample of a box's whole process tree (cgroup members, or
// the shim and its descendants). CPUPercent is the share of one CPU since the
// previous sample (the first sample covers the time since the shim started).
type BoxMetrics struct {
	ID          string        `json:"id"`
	PID         int           `json:"pid"`
	CPUPercent  float64       `json:"cpu_percent"`
	MemoryBytes uint64        `json:"memory_bytes"` // RSS summed over the tree
	Processes   int           `json:"processes"`
	DiskBytes   uint64        `json:"disk_bytes"` // size of the box directory
	Uptime      time.Duration `json:"uptime"`
	SampledAt   time.Time     `json:"sampled_at"`
}
