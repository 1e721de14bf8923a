package messages

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// sampleSpec is a spec with every field set, secrets included.
func sampleSpec() InstanceSpec {
	return InstanceSpec{
		Version: SpecVersion, Engine: EngineProcess, BoxID: "web",
		Security: SecurityOptions{Jailer: true, Seccomp: true, UID: 65534, GID: 65534, Groups: []uint32{100, 101},
			MaxOpenFiles: 1024, MaxFileSize: 1 << 30, MaxProcesses: 64, NoNewPrivs: true, NewPIDNS: true,
			SanitizeEnv: true, CloseFDs: true},
		CPUs:            2,
		CPUMillis:       1500,
		MemoryMiB:       512,
		FSShares:        []FSShare{{Tag: "shared", HostPath: "/srv/shared", ReadOnly: true}},
		BlockDevices:    []BlockDevice{{BlockID: "vda", DiskPath: "/srv/disk.qcow2", Format: "qcow2"}},
		GuestEntrypoint: Entrypoint{Executable: "/bin/sleep", Args: []string{"10"}, Env: []string{"A=1"}, WorkDir: "/"},
		Transport:       "/run/box.sock",
		ReadyTransport:  "/run/ready.sock",
		GuestRootfs:     &GuestRootfs{Path: "/srv/rootfs", Strategy: "disk"},
		NetworkConfig:   &NetworkConfig{SocketPath: "/run/net.sock", AllowNet: []string{"10.0.0.0/8"}, CAKeyPEM: NewSecret("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----")},
		DisableNetwork:  true,
		HomeDir:         "/var/lib/boxsup",
		ConsoleOutput:   "/var/lib/boxsup/boxes/web/console.log",
		ConsoleLog:      LogRotation{MaxBytes: 1 << 20, MaxFiles: 5},
		ShimLog:         LogRotation{MaxFiles: 2},
		ExitFile:        "/var/lib/boxsup/boxes/web/exit.json",
		Detach:          true,
		Secrets:         []SecretVar{{Name: "TOKEN", Value: NewSecret("s3cret-value")}},
	}
}

// TestEveryMessageRoundTripsThroughJSON proves that each message, reply and
// event decodes to exactly what was encoded, so a serializer can carry them
// over protoactor's remote transport.
func TestEveryMessageRoundTripsThroughJSON(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 123456789, time.UTC)
	exit := ExitRecord{ExitCode: -1, Signal: "SIGKILL", Reason: "killed", FinishedAt: at, Source: SourceWait}
	status := BoxStatus{ID: "web", State: StateRunning, Engine: EngineProcess, PID: 42, Generation: 3, Restarts: 1,
		Detached: true, LastExit: &exit, Reason: "r", Killed: true, CreatedAt: at, StartedAt: at, Node: "a", Unseen: time.Second,
		Err: Errorf(ErrNotFound, "%q", "web")}
	metrics := BoxMetrics{ID: "web", PID: 42, CPUPercent: 12.5, MemoryBytes: 1 << 20, Processes: 2, DiskBytes: 4096, Uptime: 3 * time.Second, SampledAt: at}
	hdr := EventHeader{Home: "/var/lib/boxsup", BoxID: "web", At: at, Generation: 3}
	policy := RestartPolicy{Mode: RestartOnFailure, MaxRestarts: 3, Window: time.Minute, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, StableAfter: 10 * time.Second, NoJitter: true}

	cases := []any{
		&StartBox{ID: "web", Spec: sampleSpec(), Restart: policy, StopTimeout: 2 * time.Second, ReadyTimeout: 5 * time.Second,
			Detach: true, Labels: map[string]string{"app": "web"}, Placement: &Placement{Kind: PlaceHash, Node: "b", Failover: true}},
		&StartExisting{ID: "web"},
		&NodeInfo{Cluster: "prod", Node: "a", Address: "10.0.0.1:7400", Boxes: 2, Accepting: true, Fence: "holding",
			Peers: []PeerSeen{{Node: "b", Unseen: time.Second}}},
		&EventsSubscribe{Subscription: "s", Kinds: []string{"BoxReady"}, Lease: time.Minute},
		&LogsRequest{ID: "web", Cursor: "c", Follow: true, Since: at},
		&LogsChunk{Cursor: "c", Data: []byte("x"), EOF: true},
		&Stop{ID: "web", Timeout: time.Second},
		&Kill{ID: "web"},
		&SignalBox{ID: "web", Signal: "SIGHUP"},
		&Remove{ID: "web", Force: true},
		&Adopt{ID: "web", PID: 42},
		&UpdateBox{ID: "web", Restart: &policy, Labels: map[string]string{"app": "web"}},
		&UpdateBox{ID: "web", AddLabels: map[string]string{"tier": "db"}, RemoveLabels: []string{"app"}},
		&BoxExit{ID: "web", Generation: 3, State: StateExited, Exit: &exit, Reason: "r", At: at},
		&StatusRequest{ID: "web"},
		&ListRequest{},
		&ListResponse{Boxes: []BoxStatus{status}},
		&status,
		&MetricsRequest{ID: "web"},
		&MetricsAllRequest{},
		&MetricsResponse{Metrics: metrics, Err: Errorf(ErrNotRunning, "x")},
		&MetricsAllResponse{Boxes: []BoxMetrics{metrics}},
		&exit,
		&StateRecord{ID: "web", State: StateStopping, Generation: 3, Identity: Identity{PID: 42, StartTime: 99, BootID: "b"}, Cgroup: "/sys/fs/cgroup/boxsup/web", Restarts: 1, LastExit: &exit, Reason: "r", CreatedAt: at, StartedAt: at, UpdatedAt: at},
		&BoxStarted{EventHeader: hdr, PID: 42},
		&BoxReady{EventHeader: hdr, PID: 42, Took: time.Millisecond},
		&BoxExited{EventHeader: hdr, PID: 42, Exit: exit, Requested: true},
		&BoxRestarting{EventHeader: hdr, Attempt: 2, Delay: 100 * time.Millisecond},
		&BoxAdopted{EventHeader: hdr, PID: 42},
		&BoxFailed{EventHeader: hdr, Reason: "restart limit exceeded"},
		&BoxRemoved{EventHeader: hdr},
	}
	for _, in := range cases {
		name := reflect.TypeOf(in).Elem().Name()
		t.Run(name, func(t *testing.T) {
			data, err := json.Marshal(in)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			out := reflect.New(reflect.TypeOf(in).Elem()).Interface()
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("round trip changed the value:\n in: %#v\nout: %#v", in, out)
			}
		})
	}
}

// TestErrorsMatchByCodeAcrossJSON shows that an error that crossed the wire
// still satisfies errors.Is against its sentinel.
func TestErrorsMatchByCodeAcrossJSON(t *testing.T) {
	data, err := json.Marshal(Errorf(ErrShimNotFound, "%s", "/nope"))
	if err != nil {
		t.Fatal(err)
	}
	var back *Error
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !errorsIs(back, ErrShimNotFound) || errorsIs(back, ErrNotFound) {
		t.Fatalf("code matching broken: %v", back)
	}
	if back.Error() != "box runner binary not found: /nope" {
		t.Fatalf("message = %q", back.Error())
	}
}

func sampleTime() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
