package shimproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// writeScript writes an executable shell script standing in for a shim.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The real reference shim answers with a valid document for the process
// engine.
func TestReadCapabilitiesOfTheReferenceShim(t *testing.T) {
	t.Parallel()
	caps, err := readCapabilities(context.Background(), shimBinary)
	if err != nil {
		t.Fatal(err)
	}
	if caps.Engine != messages.EngineProcess || caps.Legacy || len(caps.Fields) == 0 {
		t.Errorf("capabilities %+v, want the process engine's", caps)
	}
}

// How each kind of shim answer is read: a shim from before --capabilities
// honours nothing optional; anything else broken is an error, not a
// verdict.
func TestReadCapabilitiesAnswers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name   string
		script string
		legacy bool
		err    error
	}{
		{"predates the flag", `echo "usage: want exactly the arguments --box-id ID" >&2; exit 125`, true, nil},
		{"malformed document", `echo '{"capabilities_version":'`, false, messages.ErrStartFailed},
		{"another document version", `echo '{"capabilities_version":2,"engine":"x","protocol":1}'`, false, messages.ErrStartFailed},
		{"crashes", `echo boom >&2; exit 2`, false, messages.ErrStartFailed},
		{"125 with output", `echo '{}'; exit 125`, false, messages.ErrStartFailed},
	}
	for _, c := range cases {
		path := writeScript(t, dir, strings.ReplaceAll(c.name, " ", "-"), c.script)
		caps, err := readCapabilities(context.Background(), path)
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		case c.err == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == nil && caps.Legacy != c.legacy:
			t.Errorf("%s: Legacy %v, want %v", c.name, caps.Legacy, c.legacy)
		}
	}
	if _, err := readCapabilities(context.Background(), filepath.Join(dir, "missing")); !errors.Is(err, messages.ErrShimNotFound) {
		t.Errorf("missing binary: %v, want ErrShimNotFound", err)
	}
}

// A shim that never answers is killed after the timeout (ErrTimeout); a
// caller's context that ends first wins (context.Canceled).
func TestReadCapabilitiesTimeouts(t *testing.T) {
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang", `exec sleep 300`)
	old := capabilitiesTimeout
	capabilitiesTimeout = 200 * time.Millisecond
	t.Cleanup(func() { capabilitiesTimeout = old })
	if _, err := readCapabilities(context.Background(), hang); !errors.Is(err, messages.ErrTimeout) {
		t.Errorf("hanging shim: %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := readCapabilities(ctx, hang); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v, want context.Canceled", err)
	}
}

// The cache asks once per version of a file, shares a read between
// concurrent callers, asks again when the file is rewritten or replaced,
// and never keeps an error.
func TestCapabilityCache(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeScript(t, dir, "shim", "exit 0")
	var reads atomic.Int32
	fail := atomic.Bool{}
	gate := make(chan struct{})
	c := newCapabilityCache(func(ctx context.Context, p string) (messages.EngineCapabilities, error) {
		reads.Add(1)
		<-gate
		if fail.Load() {
			return messages.EngineCapabilities{}, messages.Errorf(messages.ErrTimeout, "no answer")
		}
		return messages.EngineCapabilities{Engine: messages.EngineProcess}, nil
	})

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.get(context.Background(), path); err != nil {
				t.Error(err)
			}
		})
	}
	// Every caller is waiting on the one read before it finishes.
	waitFor(t, 10*time.Second, "the first read", func() bool { return reads.Load() == 1 })
	close(gate)
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads for 8 concurrent callers, want 1", n)
	}
	if _, err := c.get(context.Background(), path); err != nil || reads.Load() != 1 {
		t.Errorf("unchanged file: err %v, %d reads; want the cached answer", err, reads.Load())
	}

	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get(context.Background(), path); err != nil || reads.Load() != 2 {
		t.Errorf("touched file: err %v, %d reads; want a new read", err, reads.Load())
	}
	replacement := writeScript(t, dir, "shim.new", "exit 0")
	if err := os.Rename(replacement, path); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get(context.Background(), path); err != nil || reads.Load() != 3 {
		t.Errorf("replaced file: err %v, %d reads; want a new read", err, reads.Load())
	}

	other := writeScript(t, dir, "other", "exit 0")
	fail.Store(true)
	if _, err := c.get(context.Background(), other); !errors.Is(err, messages.ErrTimeout) {
		t.Errorf("failing read: %v, want its error", err)
	}
	fail.Store(false)
	if _, err := c.get(context.Background(), other); err != nil || reads.Load() != 5 {
		t.Errorf("after a failure: err %v, %d reads; want a new, successful read", err, reads.Load())
	}
	if _, err := c.get(context.Background(), filepath.Join(dir, "missing")); !errors.Is(err, messages.ErrShimNotFound) {
		t.Errorf("missing file: %v, want ErrShimNotFound", err)
	}
}

// processCaps is the reference shim's document, as read from the binary.
func processCaps(t *testing.T) messages.EngineCapabilities {
	t.Helper()
	caps, err := Capabilities(context.Background(), shimBinary)
	if err != nil {
		t.Fatal(err)
	}
	return caps
}

// Every field the process engine does not honour is refused with
// ErrUnsupported (also ErrBadSpec), naming the field and the engine.
func TestCheckSpecRefusesUnsupportedFields(t *testing.T) {
	t.Parallel()
	caps := processCaps(t)
	cases := map[string]func(*messages.InstanceSpec){
		messages.FieldJailer:   func(s *messages.InstanceSpec) { s.Security.Jailer = true },
		messages.FieldFSShares: func(s *messages.InstanceSpec) { s.FSShares = []messages.FSShare{{Tag: "t", HostPath: "/srv"}} },
		messages.FieldBlockDevices: func(s *messages.InstanceSpec) {
			s.BlockDevices = []messages.BlockDevice{{BlockID: "vda", DiskPath: "/d"}}
		},
		messages.FieldGuestRootfs:   func(s *messages.InstanceSpec) { s.GuestRootfs = &messages.GuestRootfs{} },
		messages.FieldNetworkConfig: func(s *messages.InstanceSpec) { s.NetworkConfig = &messages.NetworkConfig{} },
		messages.FieldHomeDir:       func(s *messages.InstanceSpec) { s.HomeDir = "/h" },
		// Honoured only through the box cgroup: refused with no controller.
		messages.FieldCPUs:         func(s *messages.InstanceSpec) { s.CPUs = 1 },
		messages.FieldMemoryMiB:    func(s *messages.InstanceSpec) { s.MemoryMiB = 64 },
		messages.FieldMaxProcesses: func(s *messages.InstanceSpec) { s.Security.MaxProcesses = 50 },
	}
	for field, mut := range cases {
		spec := guestSpec("/bin/true")
		mut(&spec)
		err := CheckSpec(&spec, caps, nil)
		if !errors.Is(err, messages.ErrUnsupported) || !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("%s: %v, want ErrUnsupported and ErrBadSpec", field, err)
			continue
		}
		if !strings.Contains(err.Error(), field) || !strings.Contains(err.Error(), `engine "process"`) {
			t.Errorf("%s: %q does not name the field and the engine", field, err)
		}
	}
}

// The fields the process engine honours pass; the cgroup-backed ones pass
// once their controller is available, and name the one that is missing.
func TestCheckSpecAcceptsHonouredFields(t *testing.T) {
	t.Parallel()
	caps := processCaps(t)
	spec := guestSpec("/bin/true")
	spec.Security = messages.SecurityOptions{Seccomp: true, UID: 1, GID: 1, Groups: []uint32{2}, MaxOpenFiles: 1,
		MaxFileSize: 1, NoNewPrivs: true, NewPIDNS: true, SanitizeEnv: true, CloseFDs: true}
	spec.DisableNetwork = true
	if err := CheckSpec(&spec, caps, nil); err != nil {
		t.Errorf("every shim-applied field: %v", err)
	}
	spec.CPUs, spec.MemoryMiB, spec.Security.MaxProcesses = 1, 64, 50
	all := []messages.CgroupController{messages.ControllerCPU, messages.ControllerMemory, messages.ControllerPids}
	if err := CheckSpec(&spec, caps, all); err != nil {
		t.Errorf("resource fields with their controllers: %v", err)
	}
	err := CheckSpec(&spec, caps, []messages.CgroupController{messages.ControllerCPU, messages.ControllerPids})
	if !errors.Is(err, messages.ErrUnsupported) || !strings.Contains(err.Error(), "memory_mib needs the cgroup memory controller") {
		t.Errorf("without the memory controller: %v", err)
	}
}

// A shim from before --capabilities runs plain specs and refuses any
// optional field, saying why; a document for another engine is a bad spec.
func TestCheckSpecLegacyAndEngine(t *testing.T) {
	t.Parallel()
	legacy := messages.EngineCapabilities{Legacy: true}
	plain := guestSpec("/bin/true")
	if err := CheckSpec(&plain, legacy, nil); err != nil {
		t.Errorf("plain spec on a legacy shim: %v", err)
	}
	confined := plain
	confined.Security.UID = 1000
	if err := CheckSpec(&confined, legacy, nil); !errors.Is(err, messages.ErrUnsupported) || !strings.Contains(err.Error(), "predates --capabilities") {
		t.Errorf("uid on a legacy shim: %v", err)
	}
	vm := plain
	vm.Engine = messages.EngineLibkrun
	if err := CheckSpec(&vm, processCaps(t), nil); !errors.Is(err, messages.ErrBadSpec) || errors.Is(err, messages.ErrUnsupported) {
		t.Errorf("libkrun spec against the process shim: %v, want ErrBadSpec", err)
	}
}

// CheckSupported is the one call for Start: the real shim, its cached
// answer, the controllers.
func TestCheckSupported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	spec := guestSpec("/bin/true")
	if err := CheckSupported(ctx, filepath.Join(t.TempDir(), "absent"), &spec, nil); err != nil {
		t.Errorf("a spec without optional fields needs no answer from the shim: %v", err)
	}
	spec.Security.UID = 65534
	if err := CheckSupported(ctx, shimBinary, &spec, nil); err != nil {
		t.Errorf("uid: %v", err)
	}
	spec.FSShares = []messages.FSShare{{Tag: "t", HostPath: "/srv"}}
	spec.MemoryMiB = 64
	err := CheckSupported(ctx, shimBinary, &spec, nil)
	if !errors.Is(err, messages.ErrUnsupported) || !strings.Contains(err.Error(), "fs_shares") || !strings.Contains(err.Error(), "memory_mib") {
		t.Errorf("fs_shares and memory_mib: %v, want both named", err)
	}
}
