package shimproc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// cgroupModes are the two ways a box's tree is held together.
var cgroupModes = []struct {
	name string
	mode CgroupMode
}{
	{"process-group", CgroupOff},
	{"cgroup", CgroupRequired},
}

func TestSpawnReadySignalExit(t *testing.T) {
	for _, tc := range cgroupModes {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == CgroupRequired {
				requireCgroup(t)
			}
			box := newBox(t, "sleeper")
			parent := testCgroupParent(t)
			h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: tc.mode, CgroupParent: parent})
			pid := h.PID()

			if !h.Owned() {
				t.Error("a spawned shim must be owned")
			}
			if want, err := ReadIdentity(pid); err != nil || want != h.Identity() {
				t.Errorf("Identity() = %+v, /proc says %+v (%v)", h.Identity(), want, err)
			}
			st, err := readProcStat(pid)
			if err != nil || st.PGID != pid || st.PPID != os.Getpid() {
				t.Errorf("shim stat %+v (%v): want its own process group, parent %d", st, err, os.Getpid())
			}
			argv, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			if want := shimBinary + "\x00--box-id\x00" + box.ID + "\x00"; string(argv) != want {
				t.Errorf("argv = %q, want %q", argv, want)
			}
			tree := descendants(pid)
			if len(tree) != 2 {
				t.Fatalf("tree of the shim = %v, want shim and guest", tree)
			}
			guest := tree[1]
			if gst, err := readProcStat(guest); err != nil || gst.PGID != pid {
				t.Errorf("guest stat %+v (%v): want process group %d", gst, err, pid)
			}

			if tc.mode == CgroupRequired {
				root := requireCgroup(t)
				if want := filepath.Join(root, parent, box.ID, "gen-0"); h.CgroupPath() != want {
					t.Fatalf("CgroupPath() = %q, want %q", h.CgroupPath(), want)
				}
				rel := cgroupRel(t, h.CgroupPath())
				for _, p := range []int{pid, guest} {
					if got, err := procCgroupV2(p); err != nil || got != rel {
						t.Errorf("/proc/%d/cgroup: %q (%v), want %q", p, got, err, rel)
					}
				}
			} else if h.CgroupPath() != "" {
				t.Errorf("CgroupPath() = %q with CgroupOff", h.CgroupPath())
			}

			if got := h.ExitStatus(); got.Known() {
				t.Errorf("ExitStatus before the exit = %+v, want unknown", got)
			}
			if err := h.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("Signal(SIGTERM): %v", err)
			}
			waitExited(t, h, 10*time.Second)
			rec := h.ExitStatus()
			if rec.Signal != "SIGTERM" || rec.ShellCode() != 143 || rec.Source != messages.SourceExitFile {
				t.Errorf("ExitStatus() = %+v, want SIGTERM / 143 from exit_file", rec)
			}
			if alive(guest) {
				t.Errorf("guest %d still alive after the shim exited", guest)
			}
			if err := h.Signal(syscall.SIGTERM); !errors.Is(err, ErrGone) {
				t.Errorf("Signal after the exit = %v, want ErrGone", err)
			}
			if err := h.KillTree(); err != nil {
				t.Errorf("KillTree after the exit = %v, want nil", err)
			}
			if _, err := h.Metrics(); !errors.Is(err, ErrGone) {
				t.Errorf("Metrics after the exit = %v, want ErrGone", err)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Errorf("pid %d was not reaped", pid)
			}
		})
	}
}

func TestSpawnCgroupAutoUsesCgroupWhenAvailable(t *testing.T) {
	root, ok := CgroupAvailable()
	box := newBox(t, "auto")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), CgroupParent: testCgroupParent(t)})
	switch {
	case ok && !strings.HasPrefix(h.CgroupPath(), root+"/"):
		t.Errorf("CgroupAuto with %s available: CgroupPath() = %q", root, h.CgroupPath())
	case !ok && h.CgroupPath() != "":
		t.Errorf("CgroupAuto without cgroup v2: CgroupPath() = %q", h.CgroupPath())
	}
}

func TestSpawnRefusesPopulatedCgroup(t *testing.T) {
	requireCgroup(t)
	box := newBox(t, "twice")
	parent := testCgroupParent(t)
	spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupRequired, CgroupParent: parent})
	_, err := Spawn(context.Background(), SpawnRequest{
		Box: box, Binary: shimBinary, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupRequired, CgroupParent: parent,
	})
	if !errors.Is(err, messages.ErrCgroup) || !strings.Contains(err.Error(), "another instance") {
		t.Fatalf("second Spawn of a live box = %v, want ErrCgroup naming another instance", err)
	}
	if n := len(processesWithBoxID(box.ID)); n != 1 {
		t.Errorf("%d shims of the box alive, want the first one only", n)
	}
}

// boxListing lists a box directory's entries, to prove a failed call changed
// nothing.
func boxListing(t *testing.T, box layout.Box) string {
	t.Helper()
	entries, err := os.ReadDir(box.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

func TestSpawnBadInput(t *testing.T) {
	okSpec := guestSpec("/bin/sleep", "30")
	cases := []struct {
		name    string
		prepare func(t *testing.T, box layout.Box, req *SpawnRequest)
		want    messages.ErrorCode
		text    string // the exact error text, or "" to skip
	}{
		{"missing binary", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Binary = "/nonexistent/boxsup-shim"
		}, messages.ErrShimNotFound, "box runner binary not found: /nonexistent/boxsup-shim"},
		{"binary not executable", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Binary = filepath.Join(t.TempDir(), "shim")
			if err := os.WriteFile(req.Binary, []byte("#!/bin/sh\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, messages.ErrShimNotFound, ""},
		{"binary is a directory", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Binary = t.TempDir()
		}, messages.ErrShimNotFound, ""},
		{"empty executable", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Spec.GuestEntrypoint.Executable = ""
		}, messages.ErrBadSpec, ""},
		{"relative transport", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Spec.Transport = "ctl.sock"
		}, messages.ErrBadSpec, ""},
		{"box id mismatch", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Spec.BoxID = "other"
		}, messages.ErrBadSpec, ""},
		{"negative ready timeout", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.ReadyTimeout = -time.Second
		}, messages.ErrBadSpec, ""},
		{"escaping cgroup parent", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.CgroupParent = "../escape"
		}, messages.ErrBadSpec, ""},
		{"unknown cgroup mode", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Cgroup = CgroupMode(42)
		}, messages.ErrBadSpec, ""},
		{"invalid box id", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Box.ID = "../x"
		}, messages.ErrInvalidID, ""},
		{"missing box directory", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Box.Dir = filepath.Join(filepath.Dir(box.Dir), "nothere")
			req.Box.ID = "nothere"
		}, messages.ErrNotFound, ""},
		{"regular file at transport", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Spec.Transport = filepath.Join(box.SocketsDir(), "ctl.sock")
			if err := os.WriteFile(req.Spec.Transport, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, messages.ErrNotSocket, ""},
		{"directory at ready transport", func(t *testing.T, box layout.Box, req *SpawnRequest) {
			req.Spec.ReadyTransport = filepath.Join(box.SocketsDir(), "ready.sock")
			if err := os.Mkdir(req.Spec.ReadyTransport, 0o700); err != nil {
				t.Fatal(err)
			}
		}, messages.ErrNotSocket, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			box := newBox(t, "bad")
			parent := testCgroupParent(t)
			req := SpawnRequest{Box: box, Binary: shimBinary, Spec: okSpec, CgroupParent: parent}
			req.Spec.GuestEntrypoint.Args = append([]string(nil), okSpec.GuestEntrypoint.Args...)
			tc.prepare(t, box, &req)
			before := boxListing(t, box)

			h, err := Spawn(context.Background(), req)
			if err == nil {
				cleanupHandle(t, h)
				t.Fatalf("Spawn succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Spawn = %v, want %v", err, tc.want)
			}
			if tc.text != "" && err.Error() != tc.text {
				t.Errorf("error text = %q, want %q", err.Error(), tc.text)
			}
			if after := boxListing(t, box); after != before {
				t.Errorf("box directory changed: %q → %q", before, after)
			}
			if _, err := os.Stat(box.ShimLogPath()); err == nil {
				t.Error("shim.log was created")
			}
			if root, ok := CgroupAvailable(); ok {
				if _, err := os.Stat(filepath.Join(root, parent)); err == nil {
					t.Error("a cgroup was created")
				}
			}
			if filepath.IsAbs(req.Spec.Transport) {
				if raw, err := os.ReadFile(req.Spec.Transport); err != nil || string(raw) != "keep me" {
					t.Errorf("the file at transport was touched: %q, %v", raw, err)
				}
			}
			if req.Spec.ReadyTransport != "" {
				if fi, err := os.Stat(req.Spec.ReadyTransport); err != nil || !fi.IsDir() {
					t.Errorf("the directory at ready_transport was touched: %v", err)
				}
			}
		})
	}
}

func TestSpawnCgroupRequiredWithoutCgroup(t *testing.T) {
	// Pretend this host has no writable cgroup v2 (the probe is cached).
	saved := cgroupProbe
	cgroupProbe = func() (string, bool) { return "", false }
	t.Cleanup(func() { cgroupProbe = saved })

	box := newBox(t, "nocg")
	_, err := Spawn(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: guestSpec("/bin/sleep", "1"), Cgroup: CgroupRequired})
	if !errors.Is(err, messages.ErrCgroup) {
		t.Fatalf("Spawn = %v, want ErrCgroup", err)
	}
	if got := boxListing(t, box); got != "sockets" {
		t.Errorf("box directory = %q, want it untouched", got)
	}
	// CgroupAuto falls back to the process group.
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30")})
	if h.CgroupPath() != "" {
		t.Errorf("CgroupAuto without cgroup v2: CgroupPath() = %q", h.CgroupPath())
	}
}

// staleSocket leaves a unix socket file with no listener at path.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSpawnRemovesStaleSockets(t *testing.T) {
	box := newBox(t, "stale")
	dir, err := layout.SocketDir(box.SocketsDir(), "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = layout.RemoveSocketDir(box.SocketsDir()) })
	transport, ready := filepath.Join(dir, "ctl.sock"), filepath.Join(dir, "ready.sock")
	staleSocket(t, transport)
	staleSocket(t, ready)

	spec := guestSpec(os.Args[0], "-test.run=^$")
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, helperRoleEnv+"="+roleConnectReady)
	spec.Transport, spec.ReadyTransport = transport, ready
	spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupOff})
	// The reference shim does not bind the transport (the guest would), so
	// the file must be gone; the ready socket was replaced by the shim's own
	// listener, and the guest reached it.
	if _, err := os.Lstat(transport); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale transport socket still there: %v", err)
	}
}

func TestSpawnReadyThroughSocket(t *testing.T) {
	box := newBox(t, "readysock")
	dir, err := layout.SocketDir(box.SocketsDir(), "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = layout.RemoveSocketDir(box.SocketsDir()) })
	spec := guestSpec(os.Args[0], "-test.run=^$")
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, helperRoleEnv+"="+roleConnectReady)
	spec.ReadyTransport = filepath.Join(dir, "ready.sock")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupOff})
	if h.hasExited() {
		t.Fatalf("box exited right after ready: %v", h.ExitStatus())
	}
	if err := h.WaitReady(context.Background()); err != nil {
		t.Errorf("second WaitReady = %v, want the first outcome (nil)", err)
	}
	log, _ := os.ReadFile(box.ShimLogPath())
	if !bytes.Contains(log, []byte("ready socket")) {
		t.Errorf("shim.log does not mention the ready socket:\n%s", log)
	}
}

// processesWithArgv lists live processes whose command line is exactly argv.
func processesWithArgv(argv ...string) []int {
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	return liveProcesses(func(pid int, _ procStat) bool {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		return err == nil && bytes.Equal(raw, want)
	})
}

func TestSpawnExecFailure(t *testing.T) {
	box := newBox(t, "noexec")
	parent := testCgroupParent(t)
	_, err := Spawn(context.Background(), SpawnRequest{
		Box: box, Binary: shimBinary, Spec: guestSpec("/nonexistent/guest", "arg"), CgroupParent: parent,
	})
	if !errors.Is(err, messages.ErrStartFailed) {
		t.Fatalf("Spawn = %v, want ErrStartFailed", err)
	}
	if !strings.Contains(err.Error(), "exec failed") || !strings.Contains(err.Error(), "/nonexistent/guest") {
		t.Errorf("error %q does not carry the exec failure", err)
	}
	if !strings.Contains(err.Error(), "exit 127") {
		t.Errorf("error %q does not carry the shim's exit code 127", err)
	}
	assertNoBoxProcesses(t, box.ID)
	if root, ok := CgroupAvailable(); ok {
		if _, err := os.Stat(filepath.Join(root, parent, box.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the cgroup of the failed box was left behind: %v", err)
		}
	}
	rec, err := box.ReadExit()
	if err != nil || rec.ExitCode != 127 {
		t.Errorf("exit.json = %+v, %v; want exit code 127", rec, err)
	}
}

func TestSpawnReadyTimeout(t *testing.T) {
	for _, tc := range cgroupModes {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == CgroupRequired {
				requireCgroup(t)
			}
			box := newBox(t, "slow")
			dir, err := layout.SocketDir(box.SocketsDir(), "ready.sock")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = layout.RemoveSocketDir(box.SocketsDir()) })
			argv := []string{"/bin/sleep", "3141"} // never connects to the ready socket
			spec := guestSpec(argv...)
			spec.ReadyTransport = filepath.Join(dir, "ready.sock")
			parent := testCgroupParent(t)

			began := time.Now()
			_, err = Spawn(context.Background(), SpawnRequest{
				Box: box, Binary: shimBinary, Spec: spec, ReadyTimeout: 300 * time.Millisecond,
				Cgroup: tc.mode, CgroupParent: parent,
			})
			if !errors.Is(err, messages.ErrReadyTimeout) {
				t.Fatalf("Spawn = %v, want ErrReadyTimeout", err)
			}
			if took := time.Since(began); took < 300*time.Millisecond {
				t.Errorf("gave up after %v, before the 300ms timeout", took)
			}
			assertNoBoxProcesses(t, box.ID)
			waitFor(t, 10*time.Second, "the guest to be gone", func() bool { return len(processesWithArgv(argv...)) == 0 })
		})
	}
}

func TestWaitReadyContextCanceled(t *testing.T) {
	box := newBox(t, "cancel")
	dir, err := layout.SocketDir(box.SocketsDir(), "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = layout.RemoveSocketDir(box.SocketsDir()) })
	argv := []string{"/bin/sleep", "2718"}
	spec := guestSpec(argv...)
	spec.ReadyTransport = filepath.Join(dir, "ready.sock")
	h, err := Start(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: spec, Cgroup: CgroupOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupHandle(t, h) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = h.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady = %v, want the context's error", err)
	}
	waitExited(t, h, 10*time.Second)
	if rec := h.ExitStatus(); rec.Signal != "SIGKILL" || rec.Source != messages.SourceWait {
		t.Errorf("ExitStatus() = %+v, want SIGKILL from the wait status", rec)
	}
	waitFor(t, 10*time.Second, "the guest to be gone", func() bool { return len(processesWithArgv(argv...)) == 0 })
}

func TestStartContextAlreadyCanceled(t *testing.T) {
	box := newBox(t, "early")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, SpawnRequest{Box: box, Binary: shimBinary, Spec: guestSpec("/bin/sleep", "1")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if got := boxListing(t, box); got != "sockets" {
		t.Errorf("box directory = %q, want it untouched", got)
	}
}

// fakeShim writes a shell script standing in for a misbehaving shim.
func fakeShim(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-shim")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSpawnShimExitsAtOnce(t *testing.T) {
	box := newBox(t, "quitter")
	_, err := Spawn(context.Background(), SpawnRequest{
		Box: box, Binary: fakeShim(t, "exit 3"), Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff,
	})
	if !errors.Is(err, messages.ErrStartFailed) || !strings.Contains(err.Error(), "exit 3") {
		t.Fatalf("Spawn = %v, want ErrStartFailed with the runner's exit 3", err)
	}
}

func TestSpawnShimNeverReadsSpec(t *testing.T) {
	box := newBox(t, "deaf")
	spec := guestSpec("/bin/sleep", "30")
	// More than a pipe buffer (64 KiB), so the write must wait for a reader.
	for i := range 2000 {
		spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, "PADDING_"+strconv.Itoa(i)+"="+strings.Repeat("x", 64))
	}
	argv := []string{"/bin/sleep", "1618"}
	began := time.Now()
	_, err := Spawn(context.Background(), SpawnRequest{
		Box: box, Binary: fakeShim(t, "exec "+strings.Join(argv, " ")), Spec: spec, ReadyTimeout: 300 * time.Millisecond, Cgroup: CgroupOff,
	})
	if !errors.Is(err, messages.ErrReadyTimeout) || !strings.Contains(err.Error(), "did not read its spec") {
		t.Fatalf("Spawn = %v, want ErrReadyTimeout for a runner that never reads its spec", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("gave up only after %v", took)
	}
	waitFor(t, 10*time.Second, "the runner to be gone", func() bool { return len(processesWithArgv(argv...)) == 0 })
}
