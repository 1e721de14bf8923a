package messages

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValidateAcceptsAFullSpec(t *testing.T) {
	spec := sampleSpec()
	if err := spec.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// TestValidateNamesTheField checks each rejection is ErrBadSpec naming the
// field at fault, and never quotes a secret value.
func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		field string
		mut   func(*InstanceSpec)
	}{
		{"version", func(s *InstanceSpec) { s.Version = 9 }},
		{"engine", func(s *InstanceSpec) { s.Engine = "" }},
		{"engine", func(s *InstanceSpec) { s.Engine = "../x" }},
		{"box_id", func(s *InstanceSpec) { s.BoxID = "" }},
		{"guest_entrypoint.executable", func(s *InstanceSpec) { s.GuestEntrypoint.Executable = "" }},
		{"guest_entrypoint.args[0]", func(s *InstanceSpec) { s.GuestEntrypoint.Args = []string{"a\x00b"} }},
		{"guest_entrypoint.env[0]", func(s *InstanceSpec) { s.GuestEntrypoint.Env = []string{"NOEQUALS"} }},
		{"guest_entrypoint.env[0]", func(s *InstanceSpec) { s.GuestEntrypoint.Env = []string{"1BAD=x"} }},
		{"secrets[0].name", func(s *InstanceSpec) { s.Secrets = []SecretVar{{Name: "BAD-NAME", Value: NewSecret(sentinel)}} }},
		{"secrets[1].name", func(s *InstanceSpec) {
			s.Secrets = []SecretVar{{Name: "A", Value: NewSecret(sentinel)}, {Name: "A", Value: NewSecret(sentinel)}}
		}},
		{"secrets[0].value", func(s *InstanceSpec) { s.Secrets = []SecretVar{{Name: "A", Value: NewSecret(sentinel + "\x00")}} }},
		{"secrets[0].value", func(s *InstanceSpec) { s.Secrets = []SecretVar{{Name: "A", Value: NewSecret("abc")}} }},
		{"secrets[0].value", func(s *InstanceSpec) { s.Secrets = []SecretVar{{Name: "A", Value: NewSecret("")}} }},
		{"network_config.ca_key_pem", func(s *InstanceSpec) { s.NetworkConfig = &NetworkConfig{CAKeyPEM: NewSecret("k")} }},
		{"console_output", func(s *InstanceSpec) { s.ConsoleOutput = "relative/console.log" }},
		{"exit_file", func(s *InstanceSpec) { s.ExitFile = "exit.json" }},
		{"fs_shares[0]", func(s *InstanceSpec) { s.FSShares = []FSShare{{Tag: "", HostPath: "/x"}} }},
		{"block_devices[0].format", func(s *InstanceSpec) { s.BlockDevices[0].Format = "vmdk" }},
		{"memory_mib", func(s *InstanceSpec) { s.MemoryMiB = 1 }},
		{"console_log.max_bytes", func(s *InstanceSpec) { s.ConsoleLog.MaxBytes = 1000 }},
		{"console_log.max_bytes", func(s *InstanceSpec) { s.ConsoleLog.MaxBytes = -1 }},
		{"console_log.max_files", func(s *InstanceSpec) { s.ConsoleLog.MaxFiles = -1 }},
		{"shim_log.max_files", func(s *InstanceSpec) { s.ShimLog.MaxFiles = MaxLogMaxFiles + 1 }},
	}
	for _, c := range cases {
		spec := sampleSpec()
		c.mut(&spec)
		err := spec.Validate()
		if !errors.Is(err, ErrBadSpec) {
			t.Fatalf("%s: want ErrBadSpec, got %v", c.field, err)
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q does not name the field", c.field, err)
		}
		if strings.Contains(err.Error(), sentinel) {
			t.Errorf("%s: error quotes a secret: %q", c.field, err)
		}
	}
}

// TestLogRotationDefaults: zero fields take the defaults, set ones stay,
// and a spec without them marshals without the keys (older shims ignore
// them anyway; unknown fields are accepted).
func TestLogRotationDefaults(t *testing.T) {
	got := LogRotation{}.WithDefaults(DefaultConsoleLogMaxBytes, DefaultConsoleLogMaxFiles)
	if got != (LogRotation{MaxBytes: 10 << 20, MaxFiles: 3}) {
		t.Fatalf("defaults: %+v", got)
	}
	if got := (LogRotation{MaxBytes: MinLogMaxBytes}).WithDefaults(1<<20, 3); got != (LogRotation{MaxBytes: MinLogMaxBytes, MaxFiles: 3}) {
		t.Fatalf("a set field was replaced: %+v", got)
	}
	spec := sampleSpec()
	spec.ConsoleLog, spec.ShimLog = LogRotation{}, LogRotation{}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "console_log") || strings.Contains(string(b), "shim_log") {
		t.Fatalf("zero rotation settings were marshalled: %s", b)
	}
	spec.ConsoleLog = LogRotation{MaxBytes: 1 << 20, MaxFiles: 1}
	if err := spec.Validate(); err != nil {
		t.Fatalf("one file of 1 MiB: %v", err)
	}
}

func TestRestartPolicy(t *testing.T) {
	if err := (RestartPolicy{Mode: "sometimes"}).Validate(); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("bad mode: %v", err)
	}
	if err := (RestartPolicy{Window: -1}).Validate(); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("negative window: %v", err)
	}
	if err := (RestartPolicy{InitialBackoff: -1}).Validate(); err != nil {
		t.Fatalf("negative initial backoff means no delay: %v", err)
	}
	fail := ExitRecord{ExitCode: 3}
	ok := ExitRecord{ExitCode: 0}
	sig := ExitRecord{ExitCode: -1, Signal: "SIGKILL"}
	for _, c := range []struct {
		mode RestartMode
		exit ExitRecord
		want bool
	}{
		{RestartNo, fail, false}, {RestartOnFailure, fail, true}, {RestartOnFailure, ok, false},
		{RestartOnFailure, sig, true}, {RestartAlways, ok, true},
	} {
		if got := (RestartPolicy{Mode: c.mode}).ShouldRestart(c.exit); got != c.want {
			t.Errorf("%s after %s: got %v want %v", c.mode, c.exit, got, c.want)
		}
	}
	if _, err := ParseRestartMode("never"); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("ParseRestartMode: %v", err)
	}
}

func TestExitRecordShellCode(t *testing.T) {
	for _, c := range []struct {
		e    ExitRecord
		want int
	}{
		{ExitRecord{ExitCode: 7}, 7},
		{ExitRecord{ExitCode: -1, Signal: "SIGTERM"}, 143},
		{ExitRecord{ExitCode: -1, Signal: "SIGKILL"}, 137},
		{UnknownExit(sampleTime()), -1},
	} {
		if got := c.e.ShellCode(); got != c.want {
			t.Errorf("%s: ShellCode %d want %d", c.e, got, c.want)
		}
	}
	if SignalName(15) != "SIGTERM" || SignalNumber("TERM") != 15 || SignalNumber("SIGNOPE") != 0 {
		t.Fatal("signal name table broken")
	}
}

// FuzzSpecJSON: any JSON that decodes into a spec either validates or gives
// ErrBadSpec, never a panic or another error class.
func FuzzSpecJSON(f *testing.F) {
	seed, _ := json.Marshal(sampleSpec())
	f.Add(seed)
	f.Add([]byte(`{"engine":"process","box_id":"a","guest_entrypoint":{"executable":"/bin/true"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s InstanceSpec
		if json.Unmarshal(data, &s) != nil {
			return
		}
		if err := s.Validate(); err != nil && !errors.Is(err, ErrBadSpec) {
			t.Fatalf("Validate returned a non-ErrBadSpec error: %v", err)
		}
	})
}

// TestRestartInPlaceNotWithReadySocket: a restarted guest's readiness would
// be a new connection to the ready socket, which an in-place restart does
// not wait for; both sides refuse the pair.
func TestRestartInPlaceNotWithReadySocket(t *testing.T) {
	spec := sampleSpec()
	spec.RestartInPlace = true
	if err := spec.Validate(); !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "restart_in_place") {
		t.Errorf("restart_in_place with ready_transport: Validate = %v, want ErrBadSpec naming restart_in_place", err)
	}
	spec.ReadyTransport = ""
	if err := spec.Validate(); err != nil {
		t.Errorf("restart_in_place alone: Validate = %v", err)
	}
}
