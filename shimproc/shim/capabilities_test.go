package shim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// --capabilities prints a valid document at once, without reading stdin
// (a pipe nobody closes here), and declares each resource field with the
// cgroup controller the supervisor must apply.
func TestCapabilitiesDocument(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(shimBinary, "--capabilities")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = []string{noRaceExitSleep}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("--capabilities: %v; stderr %q", err, errOut.String())
		}
	case <-time.After(deadline):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("--capabilities waited for stdin")
	}
	var caps messages.EngineCapabilities
	if err := json.Unmarshal(out.Bytes(), &caps); err != nil {
		t.Fatalf("document %q: %v", out.String(), err)
	}
	if err := caps.Validate(); err != nil || caps.Engine != messages.EngineProcess {
		t.Fatalf("document %+v: engine %q, %v", caps, caps.Engine, err)
	}
	for field, ctl := range map[string]messages.CgroupController{
		messages.FieldCPUs: messages.ControllerCPU, messages.FieldMemoryMiB: messages.ControllerMemory, messages.FieldMaxProcesses: messages.ControllerPids,
	} {
		if fs, ok := caps.Honours(field); !ok || !slices.Equal(fs.Cgroup, []messages.CgroupController{ctl}) {
			t.Errorf("%s: declared %+v (%v), want honoured through the %s controller", field, fs, ok, ctl)
		}
	}
	for _, field := range []string{messages.FieldUID, messages.FieldSeccomp, messages.FieldNewPIDNS, messages.FieldDisableNetwork} {
		if fs, ok := caps.Honours(field); !ok || len(fs.Cgroup) != 0 {
			t.Errorf("%s: declared %+v (%v), want honoured by the shim itself", field, fs, ok)
		}
	}
}

// A spec that sets a field the process engine does not honour is a bad
// spec for the shim itself (the supervisor refuses it earlier): exit 125,
// the field named, the guest never run, no secret quoted.
func TestShimRefusesFieldsItDoesNotHonour(t *testing.T) {
	cases := map[string]func(*messages.InstanceSpec){
		messages.FieldJailer:   func(s *messages.InstanceSpec) { s.Security.Jailer = true },
		messages.FieldFSShares: func(s *messages.InstanceSpec) { s.FSShares = []messages.FSShare{{Tag: "t", HostPath: "/srv"}} },
		messages.FieldBlockDevices: func(s *messages.InstanceSpec) {
			s.BlockDevices = []messages.BlockDevice{{BlockID: "vda", DiskPath: "/d"}}
		},
		messages.FieldGuestRootfs: func(s *messages.InstanceSpec) { s.GuestRootfs = &messages.GuestRootfs{Path: "/r"} },
		messages.FieldNetworkConfig: func(s *messages.InstanceSpec) {
			s.NetworkConfig = &messages.NetworkConfig{CAKeyPEM: messages.NewSecret(secretSentinel)}
		},
		messages.FieldHomeDir: func(s *messages.InstanceSpec) { s.HomeDir = "/var/lib/x" },
	}
	for field, mut := range cases {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			marker := dir + "/guest-ran"
			spec := newSpec(dir, "refused", "touch", marker)
			mut(&spec)
			r := startShim(t, dir, spec, launch{})
			if r.readReady() {
				t.Fatal("ready byte for a refused spec")
			}
			if code := r.wait(); code != 125 {
				t.Errorf("exit code %d, want 125", code)
			}
			rec := r.exitRecord()
			if !strings.HasPrefix(rec.Reason, "bad spec: "+field+": not supported by the process engine") {
				t.Errorf("reason %q does not refuse %s", rec.Reason, field)
			}
			if strings.Contains(r.log(), secretSentinel) || strings.Contains(rec.Reason, secretSentinel) {
				t.Error("the refusal quotes a secret")
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the guest ran")
			}
		})
	}
}

// The init mode, run by hand without its plan socket, refuses to run.
func TestInitModeNeedsItsSocket(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(shimBinary, "--confine-init")
	cmd.Env = []string{noRaceExitSleep}
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 125 || !strings.Contains(string(out), "plan socket") {
		t.Errorf("--confine-init by hand: %v, output %q; want exit 125 naming the plan socket", err, out)
	}
}
