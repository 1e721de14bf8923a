package messages

import (
	"maps"
	"time"
)

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
	// Detach makes the box outlive its supervisor: Shutdown(LeaveRunning)
	// and a supervisor that dies leave it running for the next one to
	// adopt. Without it the box is attached: it stops when its supervisor
	// goes away. It fills Spec.Detach, the shim's side of the same choice
	// (a spec that sets Detach detaches the box too).
	Detach bool `json:"detach,omitempty"`
	// Labels are the box's labels (Kubernetes' syntax for keys and values),
	// shown on its status and events and selected by List and Subscribe.
	Labels map[string]string `json:"labels,omitempty"`
	// Placement is how a cluster placed the box, and whether it may be
	// re-placed on another member after its member's loss. Nil: the box
	// belongs to the member that received the request and never moves. A
	// supervisor that is not a cluster member refuses a StartBox that sets
	// it.
	Placement *Placement `json:"placement,omitempty"`
	// HealthCheck, when set, is probed for as long as the box runs (see
	// HealthCheck for the kinds and settings); its state shows on
	// BoxStatus.Health and as BoxHealthy/BoxUnhealthy events. It belongs
	// to the supervisor: the shim never sees it.
	HealthCheck *HealthCheck `json:"health_check,omitempty"`
	// ReadyWhen says when Start answers: at the shim's ready byte (""
	// or "ready"), or at the first passing health check ("healthy",
	// which needs HealthCheck). ReadyTimeout bounds both waits together.
	ReadyWhen ReadyCondition `json:"ready_when,omitempty"`
}

// UpdateBox changes a box's supervision settings in place, durably, without
// touching its process: a nil field is left as it is; Labels, when not
// nil, replaces the whole set. The reply (a BoxStatus) comes once the change
// is on disk.
//
// AddLabels and RemoveLabels change single labels instead, applied by the
// box itself to the set it has at that moment: two callers that each add a
// label both keep theirs, which a read-modify-write of Labels could not
// promise. They cannot be combined with Labels, nor name one key twice.
type UpdateBox struct {
	ID          string         `json:"id"`
	Restart     *RestartPolicy `json:"restart,omitempty"`
	StopTimeout *time.Duration `json:"stop_timeout,omitempty"`
	// Labels has no omitempty: an empty set (remove every label) must
	// survive JSON as {}, apart from a nil one (leave them) as null.
	Labels map[string]string `json:"labels"`
	// AddLabels sets these labels (adding or overwriting each key).
	AddLabels map[string]string `json:"add_labels,omitempty"`
	// RemoveLabels removes these keys (a key the box lacks is no error).
	RemoveLabels []string `json:"remove_labels,omitempty"`
}

// Empty reports whether u changes nothing.
func (u UpdateBox) Empty() bool {
	return u.Restart == nil && u.StopTimeout == nil && u.Labels == nil && len(u.AddLabels) == 0 && len(u.RemoveLabels) == 0
}

// NewLabels returns the label set after u is applied to old, and whether
// u touches labels at all. old is not modified.
func (u UpdateBox) NewLabels(old map[string]string) (map[string]string, bool) {
	switch {
	case u.Labels != nil:
		return maps.Clone(u.Labels), true
	case len(u.AddLabels) == 0 && len(u.RemoveLabels) == 0:
		return old, false
	}
	next := maps.Clone(old)
	if next == nil {
		next = map[string]string{}
	}
	for _, k := range u.RemoveLabels {
		delete(next, k)
	}
	maps.Copy(next, u.AddLabels)
	return next, true
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
	// Labels are the box's labels (StartBox.Labels, as updated since).
	Labels map[string]string `json:"labels,omitempty"`
	// Restart and StopTimeout are the box's supervision settings in force.
	Restart     RestartPolicy `json:"restart"`
	StopTimeout time.Duration `json:"stop_timeout,omitempty"`
	// Health is the running generation's health, for a box with a
	// HealthCheck: nil otherwise, and while no generation runs. It is not
	// persisted: a supervisor that adopts a box starts from "starting".
	Health *BoxHealth `json:"health,omitempty"`
	// Damage says what was wrong with the box's files when it was loaded
	// (spec.json or state.json missing, corrupt, or not to be trusted), for
	// as long as that matters: a spec.json that stays unusable, or a
	// state.json that was set aside, until the box is started again. Empty
	// when nothing is. Reason includes it.
	Damage string `json:"damage,omitempty"`
	// Node is the cluster member the box belongs to; empty outside a
	// cluster.
	Node string `json:"node,omitempty"`
	// Unseen, set only for a box whose member does not answer (its state
	// is then unknown), is how long ago that member was last seen alive;
	// 0 when nobody has seen it since they started.
	Unseen time.Duration `json:"unseen,omitempty"`
	Err    *Error        `json:"error,omitempty"`
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
// previous sample (the first sample covers the time since the shim started);
// CPUSeconds is the tree's CPU time as a counter, which any number of
// consumers can turn into a rate of their own.
//
// Where the box has a cgroup the figures come from it (O(1) files per box):
// CPU time from cpu.stat (or cpuacct.usage), memory from memory.current (or
// memory.usage_in_bytes: what the memory limit counts, page cache included),
// tasks from pids.current. Otherwise they are summed over the tree's
// processes (memory as RSS). The counters start at zero with each
// generation: a restarted box is a counter reset.
type BoxMetrics struct {
	ID          string  `json:"id"`
	PID         int     `json:"pid"`
	CPUPercent  float64 `json:"cpu_percent"`
	CPUSeconds  float64 `json:"cpu_seconds"`  // user+system CPU time of the generation's tree, cumulative
	MemoryBytes uint64  `json:"memory_bytes"` // the memory cgroup's usage, else RSS summed over the tree
	Processes   int     `json:"processes"`
	// Tasks counts the tree's threads (pids.current), what PidsLimit
	// limits; 0 when the box has no pids cgroup.
	Tasks     uint64        `json:"tasks,omitempty"`
	DiskBytes uint64        `json:"disk_bytes"` // size of the box directory
	Uptime    time.Duration `json:"uptime"`
	SampledAt time.Time     `json:"sampled_at"`
	// MemoryLimitBytes and PidsLimit are the limits in force on the box
	// cgroup (0: none).
	MemoryLimitBytes uint64 `json:"memory_limit_bytes,omitempty"`
	PidsLimit        uint64 `json:"pids_limit,omitempty"`
	// CPUQuotaMillis is the CPU quota in force, in thousandths of a CPU (0:
	// none).
	CPUQuotaMillis uint32 `json:"cpu_quota_millis,omitempty"`
	// OOMKills counts the processes of the generation that the kernel's OOM
	// killer killed under the box's memory limit, where the kernel reports
	// it (memory.events, memory.oom_control).
	OOMKills uint64 `json:"oom_kills,omitempty"`
}
