package wire

import (
	"time"

	"github.com/boxsup/boxsup/messages"
)

// secretValue must never appear in any printed form of an envelope.
const secretValue = "SENTINEL-wire-4b1d"

// samples holds one value of every registered type, with every field set,
// secrets included.
func samples() []any {
	at := time.Date(2026, 12, 1, 5, 0, 0, 123456789, time.UTC)
	exit := messages.ExitRecord{ExitCode: -1, Signal: "SIGKILL", Reason: "killed", FinishedAt: at, Source: messages.SourceWait}
	status := messages.BoxStatus{ID: "web", State: messages.StateRunning, Engine: messages.EngineProcess, PID: 42,
		Generation: 3, Restarts: 1, Detached: true, LastExit: &exit, Reason: "r", Killed: true, CreatedAt: at,
		StartedAt: at, Node: "b", Unseen: 3 * time.Second, Err: messages.Errorf(messages.ErrNotFound, "%q", "web")}
	metrics := messages.BoxMetrics{ID: "web", PID: 42, CPUPercent: 12.5, MemoryBytes: 1 << 20, Processes: 2,
		DiskBytes: 4096, Uptime: 3 * time.Second, SampledAt: at}
	hdr := messages.EventHeader{Home: "/var/lib/boxsup", BoxID: "web", At: at, Generation: 3}
	spec := messages.InstanceSpec{
		Version: messages.SpecVersion, Engine: messages.EngineProcess, BoxID: "web",
		Security:        messages.SecurityOptions{Jailer: true, Seccomp: true, UID: 65534, GID: 65534, MaxOpenFiles: 1024},
		CPUs:            2,
		MemoryMiB:       512,
		FSShares:        []messages.FSShare{{Tag: "shared", HostPath: "/srv/shared", ReadOnly: true}},
		BlockDevices:    []messages.BlockDevice{{BlockID: "vda", DiskPath: "/srv/disk.qcow2", Format: "qcow2"}},
		GuestEntrypoint: messages.Entrypoint{Executable: "/bin/sleep", Args: []string{"10"}, Env: []string{"A=1"}, WorkDir: "/"},
		GuestRootfs:     &messages.GuestRootfs{Path: "/srv/rootfs", Strategy: "disk"},
		NetworkConfig:   &messages.NetworkConfig{SocketPath: "/run/net.sock", AllowNet: []string{"10.0.0.0/8"}, CAKeyPEM: messages.NewSecret(secretValue + "-key")},
		Detach:          true,
		Secrets:         []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(secretValue)}},
	}
	policy := messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 3, Window: time.Minute,
		InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, StableAfter: 10 * time.Second, NoJitter: true}
	return []any{
		&messages.StartBox{ID: "web", Spec: spec, Restart: policy, StopTimeout: 2 * time.Second, ReadyTimeout: 5 * time.Second,
			Placement: &messages.Placement{Kind: messages.PlaceSpread, Node: "b", Failover: true}},
		&messages.StartExisting{ID: "web"},
		&messages.Stop{ID: "web", Timeout: time.Second},
		&messages.Kill{ID: "web"},
		&messages.SignalBox{ID: "web", Signal: "SIGHUP"},
		&messages.Remove{ID: "web", Force: true},
		&messages.Adopt{ID: "web", PID: 42},
		&messages.UpdateBox{ID: "web", Restart: &messages.RestartPolicy{Mode: messages.RestartAlways}, Labels: map[string]string{"app": "web"}},
		&messages.StatusRequest{ID: "web"},
		&messages.ListRequest{},
		&messages.MetricsRequest{ID: "web"},
		&messages.MetricsAllRequest{},
		&messages.NodeInfoRequest{},
		&messages.NodeInfo{Cluster: "prod", Node: "a", Address: "10.0.0.1:7400", Boxes: 3, LiveBoxes: 2, MemAvailableBytes: 1 << 30,
			MemTotalBytes: 2 << 30, Accepting: false, Refusal: "fenced", Fence: "fenced",
			Peers: []messages.PeerSeen{{Node: "b", Alive: false, Unseen: 4 * time.Second}}},
		&messages.EventsSubscribe{Subscription: "s1", Boxes: []string{"web"}, Kinds: []string{"BoxReady"}, Labels: "app=web", Lease: 30 * time.Second,
			Since: at, Until: at.Add(time.Hour)},
		&messages.EventsUnsubscribe{Subscription: "s1"},
		&messages.LogsRequest{ID: "web", Cursor: "c1", Follow: true, Tail: 10, Since: at, Stream: "stdout", Timestamps: true},
		&messages.InspectRequest{ID: "web"},
		&messages.BoxInspect{ID: "web", Status: status, Record: &messages.StateRecord{ID: "web", State: messages.StateRunning, Generation: 3},
			RecordError: messages.Errorf(messages.ErrCorruptFile, "x"), Spec: &messages.StartBox{ID: "web"}, SpecError: messages.Errorf(messages.ErrNotFound, "y"),
			Cgroup: "/sys/fs/cgroup/boxsup/web", Limits: messages.Limits{CPUMillis: 500, MemoryBytes: 1 << 26, Pids: 64},
			Enforced: &messages.Limits{Pids: 64}, EnforcedError: messages.Errorf(messages.ErrNotRunning, "z"),
			Paths: messages.BoxPaths{Home: "/h", Dir: "/h/boxes/web", Spec: "s", State: "st", Exit: "e", ConsoleLog: "c", ShimLog: "sl", Sockets: "so"}},
		&messages.LogsChunk{Cursor: "c1", Data: []byte("hello\n"), EOF: true, Err: messages.Errorf(messages.ErrNotFound, "x")},
		&status,
		&messages.ListResponse{Boxes: []messages.BoxStatus{status}},
		&messages.MetricsResponse{Metrics: metrics, Err: messages.Errorf(messages.ErrNotRunning, "x")},
		&messages.MetricsAllResponse{Boxes: []messages.BoxMetrics{metrics}},
		messages.Errorf(messages.ErrBusy, "box %q is stopping", "web"),
		&messages.BoxStarted{EventHeader: hdr, PID: 42},
		&messages.BoxReady{EventHeader: hdr, PID: 42, Took: time.Millisecond},
		&messages.BoxExited{EventHeader: hdr, PID: 42, Exit: exit, Requested: true},
		&messages.BoxRestarting{EventHeader: hdr, Attempt: 2, Delay: 100 * time.Millisecond},
		&messages.BoxAdopted{EventHeader: hdr, PID: 42},
		&messages.BoxFailed{EventHeader: hdr, Reason: "restart limit exceeded"},
		&messages.BoxRemoved{EventHeader: hdr},
		&messages.BoxExit{ID: "web", Generation: 3, State: messages.StateExited, Exit: &exit, Reason: "r", At: at},
		&messages.EventsLagged{EventHeader: messages.EventHeader{Home: "/var/lib/boxsup"}, Dropped: 12},
		&messages.BoxHealthy{EventHeader: hdr, First: true},
		&messages.BoxUnhealthy{EventHeader: hdr, FailingStreak: 3, Last: messages.HealthResult{Outcome: messages.HealthFail,
			Start: exit.FinishedAt, End: exit.FinishedAt.Add(time.Second), ExitCode: -1, Reason: "timed out after 1s"}},
	}
}
