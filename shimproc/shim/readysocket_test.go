package shim_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// socketGuest returns a spec whose guest is this test binary in
// ready-connect mode: it reports whether the ready socket already existed
// when it started, waits for the gate file, then connects.
func socketGuest(t *testing.T, dir string) (spec specWithFiles) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := specWithFiles{marker: filepath.Join(dir, "marker"), gate: filepath.Join(dir, "gate")}
	s.InstanceSpec = newSpec(dir, "socketed", exe, s.marker, s.gate)
	s.GuestEntrypoint.Env = append(s.GuestEntrypoint.Env, helperEnv+"="+helperReadyConnect, noRaceExitSleep)
	s.ReadyTransport = filepath.Join(dir, "ready.sock")
	return s
}

// With ready_transport, the listener exists before the guest starts, and the
// ready byte comes only once the guest has connected.
func TestReadyWhenGuestConnects(t *testing.T) {
	dir := t.TempDir()
	spec := socketGuest(t, dir)
	r := startShim(t, dir, spec.InstanceSpec, launch{})

	waitFor(t, "the guest to start", func() bool { return readFile(t, spec.marker) != "" })
	if got := readFile(t, spec.marker); got != "socket" {
		t.Fatalf("guest start-up found %s; want the socket listening before the guest starts", got)
	}
	// The guest is running but has not connected: no byte may be there yet.
	if n, err := readNow(r.ready); n != -1 || err != syscall.EAGAIN {
		t.Fatalf("ready pipe before the guest connected: read = %d, %v; want EAGAIN (nothing yet); log:\n%s", n, err, r.log())
	}

	if err := os.WriteFile(spec.gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !r.readReady() {
		t.Fatalf("no ready byte after the guest connected; log:\n%s", r.log())
	}
	if code := r.wait(); code != 0 {
		t.Errorf("exit code = %d, want 0; log:\n%s", code, r.log())
	}
	if fileExists(spec.ReadyTransport) {
		t.Error("the ready socket was left behind")
	}
}

// A guest that exits without connecting never makes the box ready.
func TestNotReadyWhenGuestNeverConnects(t *testing.T) {
	dir := t.TempDir()
	spec := newSpec(dir, "silent", "sh", "-c", `test -S "$BOXSUP_READY_SOCKET" && exit 4; exit 9`)
	spec.ReadyTransport = filepath.Join(dir, "ready.sock")
	r := startShim(t, dir, spec, launch{})
	if r.readReady() {
		t.Fatal("ready byte though the guest never connected")
	}
	if code := r.wait(); code != 4 {
		t.Errorf("exit code = %d, want 4 (the guest saw the socket and exited 4); log:\n%s", code, r.log())
	}
	if fileExists(spec.ReadyTransport) {
		t.Error("the ready socket was left behind")
	}
}

// A stale socket from an earlier run is replaced; transport is exported but
// not listened on.
func TestStaleReadySocketIsReplaced(t *testing.T) {
	dir := t.TempDir()
	spec := socketGuest(t, dir)
	spec.Transport = filepath.Join(dir, "box.sock")
	stale, err := net.Listen("unix", spec.ReadyTransport)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close() // leaves the socket file behind, as a crash would
	if !fileExists(spec.ReadyTransport) {
		t.Fatal("setup: no stale socket")
	}
	r := startShim(t, dir, spec.InstanceSpec, launch{})
	if err := os.WriteFile(spec.gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !r.readReady() {
		t.Fatalf("no ready byte; log:\n%s", r.log())
	}
	if code := r.wait(); code != 0 {
		t.Errorf("exit code = %d, want 0; log:\n%s", code, r.log())
	}
	if fileExists(spec.Transport) {
		t.Error("the shim created the transport socket; only the guest may")
	}
	if !strings.Contains(r.log(), "ready") {
		t.Errorf("shim log does not mention readiness:\n%s", r.log())
	}
}

// specWithFiles is a spec plus the helper guest's marker and gate paths.
type specWithFiles struct {
	messages.InstanceSpec
	marker, gate string
}

// readNow tries one read of f without waiting (the pipe is non-blocking, as
// os.Pipe makes it) and returns the raw result: -1 and EAGAIN when nothing
// is there.
func readNow(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), make([]byte, 1))
		return true
	}); err != nil {
		return 0, err
	}
	return n, rerr
}
