package shimproc

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestShimSweepsEscapedGuestChildrenThroughTheCgroup: a guest that exits on
// its own, leaving a child that left the process group with setsid, must not
// leave that child behind. The shim learns its cgroup from BOXSUP_CGROUP and
// sweeps cgroup.procs, which catches what a process-group sweep cannot.
func TestShimSweepsEscapedGuestChildrenThroughTheCgroup(t *testing.T) {
	requireCgroup(t)
	if _, err := os.Stat("/usr/bin/setsid"); err != nil {
		t.Skip("needs /usr/bin/setsid")
	}
	box := newBox(t, "sweep")
	pidFile := box.Dir + "/escaped.pid"
	h := spawnBox(t, SpawnRequest{
		Box:          box,
		Spec:         guestSpec("/bin/sh", "-c", "/usr/bin/setsid /bin/sleep 1002 & echo $! > "+pidFile+"; sleep 0.3; exit 0"),
		Cgroup:       CgroupRequired,
		CgroupParent: testCgroupParent(t),
	})
	var escaped int
	waitFor(t, 10*time.Second, "the escaped child's pid", func() bool {
		b, err := os.ReadFile(pidFile)
		escaped, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && escaped > 0
	})
	if !alive(escaped) {
		t.Fatalf("escaped child %d is not running before the guest exits", escaped)
	}
	waitExited(t, h, 10*time.Second)
	if rec := h.ExitStatus(); rec.ExitCode != 0 {
		t.Fatalf("guest exit = %+v, want 0", rec)
	}
	// No KillTree: the shim itself must have swept the cgroup.
	waitFor(t, 10*time.Second, "the escaped child to be killed by the shim's sweep", func() bool { return !alive(escaped) })
	procs, err := FindCgroupProcs(h.CgroupPath())
	if err != nil || len(procs) != 0 {
		t.Fatalf("cgroup members after the shim exited: %v, %v", procs, err)
	}
}
