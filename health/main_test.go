package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// pollInterval is how often a test re-checks a condition it waits for.
const pollInterval = 10 * time.Millisecond

// roleEnv makes the test binary, started as a box's guest, play a role
// instead of running the tests.
const roleEnv = "HEALTH_TEST_ROLE"

// roleListen is a guest that listens on the TCP address in $LISTEN_TCP
// (and answers HTTP GETs there with 200 "ok") until it is signalled.
const roleListen = "listen"

// shimBinary is the real boxsup-shim, built once by TestMain.
var shimBinary string

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	// Orphans of the probes (a check's background processes, killed with
	// its group) are reparented here and reaped by the tests; PID 1 of
	// this machine would leave them zombies.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "health-shim-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shimBinary, err = testutil.BuildShim(dir, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(cleaningM{m, dir})
}

// cleaningM removes the shim's build directory before goleak looks.
type cleaningM struct {
	m   *testing.M
	dir string
}

func (c cleaningM) Run() int {
	code := c.m.Run()
	_ = os.RemoveAll(c.dir)
	if err := reapOrphans(10 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = max(code, 1)
	}
	return code
}

// reapOrphans reaps the processes reparented to this subreaper (the guests
// of killed boxes whose shim died first, the probes' background
// processes), which PID 1 of this machine would leave zombies, and fails
// when a child is still alive after d: something a test started was left
// running.
func reapOrphans(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return nil // no child left
		case err == nil && pid > 0:
			continue
		case time.Now().After(deadline):
			kids, _ := childrenOf(os.Getpid())
			return fmt.Errorf("processes %v are still running after the tests", kids)
		}
		time.Sleep(pollInterval)
	}
}

func runRole(role string) int {
	switch role {
	case roleListen:
		ln, err := net.Listen("tcp", os.Getenv("LISTEN_TCP"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
				_ = c.Close()
			}
		}()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown role", role)
	return 2
}

// box is a running box for the exec and namespace tests: a real shim
// spawned through shimproc, in a cgroup of its own where the host has one.
type box struct {
	h      *shimproc.Handle
	spec   messages.InstanceSpec
	target Target
}

// startBox spawns spec as a box, and kills and removes it when the test
// ends.
func startBox(t *testing.T, spec messages.InstanceSpec) *box {
	t.Helper()
	home, err := layout.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id := "hc-" + strconv.Itoa(os.Getpid())
	b, err := home.Box(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	parent := fmt.Sprintf("boxsup-test-health-%d-%d", os.Getpid(), time.Now().UnixNano())
	spec.Engine = messages.EngineProcess
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := shimproc.Spawn(ctx, shimproc.SpawnRequest{Box: b, Binary: shimBinary, Spec: spec,
		ReadyTimeout: 15 * time.Second, CgroupParent: parent, Generation: 1})
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	t.Cleanup(func() {
		_ = h.KillTree()
		select {
		case <-h.Exited():
		case <-time.After(10 * time.Second):
			t.Errorf("box pid %d did not exit after KillTree", h.PID())
		}
		_ = h.Close()
		if err := h.RemoveCgroup(); err != nil {
			t.Errorf("removing the box's cgroup: %v", err)
		}
		if err := shimproc.RemoveCgroupParent(parent); err != nil {
			t.Errorf("removing the cgroup parent: %v", err)
		}
	})
	return &box{h: h, spec: spec, target: Target{Spec: &spec, Shim: h.Identity(), Cgroup: h.CgroupPath()}}
}

// guestSpec runs argv as the guest.
func guestSpec(argv ...string) messages.InstanceSpec {
	return messages.InstanceSpec{
		GuestEntrypoint: messages.Entrypoint{Executable: argv[0], Args: argv[1:],
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
	}
}

// listenerSpec runs the test binary as a guest listening on addr.
func listenerSpec(t *testing.T, addr string) messages.InstanceSpec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec := guestSpec(self)
	spec.GuestEntrypoint.Env = append(spec.GuestEntrypoint.Env, roleEnv+"="+roleListen, "LISTEN_TCP="+addr)
	return spec
}

// cgroupRel is the cgroup v2 path of dir as /proc/PID/cgroup shows it.
func cgroupRel(dir string) string {
	root, _ := shimproc.CgroupAvailable()
	return "/" + strings.TrimPrefix(strings.TrimPrefix(dir, root), "/")
}

// eventually polls cond every 10 ms until it holds or d has passed.
func eventually(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// cgroupProcs lists the processes of a cgroup directory.
func cgroupProcs(t *testing.T, dir string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(raw))
}
