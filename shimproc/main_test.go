package shimproc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// shimBinary is the real boxsup-shim, built once by TestMain.
var shimBinary string

// TestMain runs a helper role when the test binary is re-executed as a child
// process (see helpers_test.go); otherwise it builds the real shim and runs
// the tests under goleak.
func TestMain(m *testing.M) {
	if role := os.Getenv(helperRoleEnv); role != "" {
		os.Exit(runHelper(role))
	}
	dir, err := os.MkdirTemp("", "shimproc-shim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shimBinary, err = testutil.BuildShim(dir, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { _ = os.RemoveAll(dir) }))
}

// newBox opens a temp home and creates a box in it. The ID is name plus this
// process's pid: the /proc scans that prove a box left no process behind
// look for "--box-id ID", and other test binaries may run at the same time.
func newBox(t *testing.T, name string) layout.Box {
	t.Helper()
	id := name + "-" + strconv.Itoa(os.Getpid())
	home, err := layout.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	box, err := home.Box(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := box.Create(); err != nil {
		t.Fatal(err)
	}
	return box
}

// guestSpec is a spec running argv as the guest.
func guestSpec(argv ...string) messages.InstanceSpec {
	return messages.InstanceSpec{
		Engine: messages.EngineProcess,
		GuestEntrypoint: messages.Entrypoint{
			Executable: argv[0],
			Args:       argv[1:],
			Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		},
	}
}

// testCgroupParent returns a fresh cgroup parent for one test and removes it
// (and any box cgroups left in it, which must be empty) when the test ends.
func testCgroupParent(t *testing.T) string {
	t.Helper()
	parent := fmt.Sprintf("boxsup-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		root, ok := CgroupAvailable()
		if !ok {
			return
		}
		dir := filepath.Join(root, parent)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				if err := removeCgroup(filepath.Join(dir, e.Name()), 5*time.Second); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		if err := removeCgroup(dir, 5*time.Second); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return parent
}

// requireCgroup skips the test when no writable cgroup v2 hierarchy exists.
func requireCgroup(t *testing.T) string {
	t.Helper()
	root, ok := CgroupAvailable()
	if !ok {
		t.Skip("no writable cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified (needs root and cgroup2)")
	}
	return root
}

// spawnBox spawns a box and registers clean-up that kills whatever is left,
// closes the handle and removes the cgroup.
func spawnBox(t *testing.T, req SpawnRequest) *Handle {
	t.Helper()
	if req.Binary == "" {
		req.Binary = shimBinary
	}
	if req.ReadyTimeout == 0 {
		req.ReadyTimeout = 10 * time.Second
	}
	h, err := Spawn(context.Background(), req)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	t.Cleanup(func() { cleanupHandle(t, h) })
	return h
}

// cleanupHandle kills the box's tree, waits for the exit, closes the handle
// and removes its cgroup. A handle the test closed itself is left to the
// clean-up of another handle on the same shim.
func cleanupHandle(t *testing.T, h *Handle) {
	t.Helper()
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if !closed && !h.hasExited() {
		_ = h.KillTree()
		if !waitClosed(h.Exited(), 10*time.Second) {
			t.Errorf("cleanup: pid %d did not exit after KillTree", h.PID())
		}
	}
	if err := h.Close(); err != nil {
		t.Errorf("cleanup: Close: %v", err)
	}
	if err := h.RemoveCgroup(); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// waitExited fails the test unless h exits within d.
func waitExited(t *testing.T, h *Handle, d time.Duration) {
	t.Helper()
	if !waitClosed(h.Exited(), d) {
		t.Fatalf("pid %d did not exit within %v", h.PID(), d)
	}
}

// waitFor polls cond every 10 ms until it holds, failing after deadline.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, deadline, 10*time.Millisecond, what, cond)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && !st.zombie()
}

// liveProcesses scans /proc for live (non-zombie) processes matching keep.
func liveProcesses(keep func(pid int, st procStat) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.zombie() {
			continue
		}
		if keep(pid, st) {
			out = append(out, pid)
		}
	}
	return out
}

// processesWithBoxID lists live processes whose command line holds
// "--box-id id": the shims of that box.
func processesWithBoxID(id string) []int {
	needle := []byte("--box-id\x00" + id + "\x00")
	return liveProcesses(func(pid int, _ procStat) bool {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		return err == nil && bytes.Contains(raw, needle)
	})
}

// groupMembers lists live processes of process group pgid.
func groupMembers(pgid int) []int {
	return liveProcesses(func(_ int, st procStat) bool { return st.PGID == pgid })
}

// inCgroup lists live processes whose cgroup v2 path is rel.
func inCgroup(rel string) []int {
	return liveProcesses(func(pid int, _ procStat) bool {
		got, err := procCgroupV2(pid)
		return err == nil && got == rel
	})
}

// assertNoBoxProcesses fails when a shim of box id is still alive.
func assertNoBoxProcesses(t *testing.T, id string) {
	t.Helper()
	waitFor(t, 10*time.Second, "no live process of box "+id, func() bool {
		return len(processesWithBoxID(id)) == 0
	})
}

// cgroupRel returns the cgroup v2 path ("/a/b") of an absolute cgroup dir.
func cgroupRel(t *testing.T, dir string) string {
	t.Helper()
	root := requireCgroup(t)
	return "/" + strings.TrimPrefix(strings.TrimPrefix(dir, root), "/")
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // the directory's own fd
}

// startChild starts a plain child process of the test (its own process
// group) and registers clean-up that kills and reaps it unless released.
func startChild(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	})
	return cmd
}
