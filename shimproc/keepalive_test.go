package shimproc

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// watchSecondHandle adopts a spawned shim a second time. The adopter is the
// test process, the shim's parent, so the second handle is owned: it reaps
// the shim and reports its exit after the first handle was closed.
func watchSecondHandle(t *testing.T, h *Handle) *Handle {
	t.Helper()
	second, err := Adopt(h.box, h.Identity(), AdoptOptions{Cgroup: h.CgroupPath()})
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if !second.Owned() {
		t.Fatal("re-adopting our own child must give an owned handle")
	}
	t.Cleanup(func() { cleanupHandle(t, second) })
	return second
}

// fdTarget returns what fd n of pid points to, or "" when it is not open.
func fdTarget(pid, n int) string {
	target, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(n))
	return target
}

func TestKeepaliveClosedStopsAttachedShim(t *testing.T) {
	box := newBox(t, "attached")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff})
	if target := fdTarget(h.PID(), 4); !strings.HasPrefix(target, "pipe:") {
		t.Fatalf("fd 4 of an attached shim = %q, want the keepalive pipe", target)
	}
	second := watchSecondHandle(t, h)

	if err := h.Close(); err != nil { // the keepalive was not taken: Close drops it
		t.Fatal(err)
	}
	waitExited(t, second, 10*time.Second)
	rec := second.ExitStatus()
	if !strings.Contains(rec.Reason, "keepalive") || rec.Signal != "SIGTERM" {
		t.Errorf("ExitStatus() = %+v, want the guest stopped with SIGTERM because the keepalive closed", rec)
	}
}

func TestKeepaliveTakenKeepsShimAlive(t *testing.T) {
	box := newBox(t, "taken")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff})
	keepalive := h.TakeKeepalive()
	if keepalive == nil {
		t.Fatal("TakeKeepalive of an attached shim = nil")
	}
	if h.TakeKeepalive() != nil {
		t.Error("second TakeKeepalive must return nil")
	}
	second := watchSecondHandle(t, h)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// The shim lives while the caller holds the keepalive: prove it with a
	// round trip through it (a metrics sample of the live tree).
	if m, err := second.Metrics(); err != nil || m.Processes != 2 {
		t.Fatalf("after Close with the keepalive taken: Metrics() = %+v, %v", m, err)
	}
	if err := keepalive.Close(); err != nil {
		t.Fatal(err)
	}
	waitExited(t, second, 10*time.Second)
	if rec := second.ExitStatus(); !strings.Contains(rec.Reason, "keepalive") {
		t.Errorf("ExitStatus() = %+v, want a keepalive stop", rec)
	}
}

func TestDetachedShimSurvivesClose(t *testing.T) {
	box := newBox(t, "detached")
	spec := guestSpec("/bin/sleep", "30")
	spec.Detach = true
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupOff})
	if h.TakeKeepalive() != nil {
		t.Error("a detached shim has no keepalive")
	}
	st, err := readProcStat(h.PID())
	if err != nil {
		t.Fatal(err)
	}
	if sid, _ := unix.Getsid(h.PID()); sid != h.PID() || st.PGID != h.PID() {
		t.Errorf("detached shim: session %d, group %d; want its own session", sid, st.PGID)
	}
	if target := fdTarget(h.PID(), 4); strings.HasPrefix(target, "pipe:") {
		t.Errorf("fd 4 of a detached shim is a pipe (%q): it must get no keepalive", target)
	}
	second := watchSecondHandle(t, h)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing reaches a detached shim when a handle closes; give a would-be
	// keepalive stop ample time (an attached shim exits within milliseconds).
	if waitClosed(second.Exited(), 300*time.Millisecond) {
		t.Fatalf("detached shim exited after Close: %+v", second.ExitStatus())
	}
	if err := second.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExited(t, second, 10*time.Second)
}
