package shimproc

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// stubbornGuest ignores SIGTERM (and so do its children: an ignored signal
// stays ignored across exec), keeps a background sleep and, in the cgroup
// case, a process that left the process group with setsid.
func stubbornGuest(escape bool) []string {
	script := `trap "" TERM; /bin/sleep 1000 & `
	if escape {
		script += `/usr/bin/setsid /bin/sleep 1001 & `
	}
	script += `while :; do /bin/sleep 1; done`
	return []string{"/bin/sh", "-c", script}
}

func TestKillTree(t *testing.T) {
	for _, tc := range cgroupModes {
		t.Run(tc.name, func(t *testing.T) {
			withCgroup := tc.mode == CgroupRequired
			if withCgroup {
				requireCgroup(t)
			}
			if _, err := os.Stat("/usr/bin/setsid"); withCgroup && err != nil {
				t.Skip("needs /usr/bin/setsid")
			}
			box := newBox(t, "stubborn")
			h := spawnBox(t, SpawnRequest{
				Box: box, Spec: guestSpec(stubbornGuest(withCgroup)...), Cgroup: tc.mode, CgroupParent: testCgroupParent(t),
			})
			pid := h.PID()
			want := 4 // shim, sh, sleep 1000, sleep 1
			if withCgroup {
				want = 5 // + the setsid'd sleep, which still is a descendant
			}
			var tree []int
			waitFor(t, 10*time.Second, "the guest's tree to form", func() bool {
				tree = descendants(pid)
				return len(tree) >= want
			})

			// SIGTERM reaches the guest through the shim, and is ignored.
			if err := h.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := h.KillTree(); err != nil {
				t.Fatalf("KillTree: %v", err)
			}
			waitExited(t, h, 10*time.Second)
			if rec := h.ExitStatus(); rec.Signal != "SIGKILL" || rec.Source != messages.SourceWait || rec.Reason != "killed" {
				t.Errorf("ExitStatus() = %+v, want the shim killed by SIGKILL (wait status)", rec)
			}
			waitFor(t, 10*time.Second, "every process of the tree to die", func() bool {
				for _, p := range tree {
					if alive(p) {
						return false
					}
				}
				return true
			})
			if members := groupMembers(pid); len(members) != 0 {
				t.Errorf("live members of process group %d: %v", pid, members)
			}
			if withCgroup {
				rel := cgroupRel(t, h.CgroupPath())
				waitFor(t, 10*time.Second, "the cgroup to empty", func() bool {
					procs, err := FindCgroupProcs(h.CgroupPath())
					return err == nil && len(procs) == 0 && len(inCgroup(rel)) == 0
				})
				if err := h.RemoveCgroup(); err != nil {
					t.Errorf("RemoveCgroup: %v", err)
				}
				if _, err := os.Stat(h.CgroupPath()); !os.IsNotExist(err) {
					t.Errorf("cgroup still exists after RemoveCgroup: %v", err)
				}
			}
			if err := h.KillTree(); err != nil {
				t.Errorf("KillTree of a dead box = %v, want nil", err)
			}
		})
	}
}

// TestKillCgroupMembersFallback exercises the path for kernels without
// cgroup.kill: every member is killed through its own pidfd.
func TestKillCgroupMembersFallback(t *testing.T) {
	requireCgroup(t)
	box := newBox(t, "fallback")
	h := spawnBox(t, SpawnRequest{
		Box: box, Spec: guestSpec(stubbornGuest(true)...), Cgroup: CgroupRequired, CgroupParent: testCgroupParent(t),
	})
	waitFor(t, 10*time.Second, "the guest's tree to form", func() bool { return len(descendants(h.PID())) >= 5 })
	if err := killCgroupMembers(h.CgroupPath()); err != nil {
		t.Fatalf("killCgroupMembers: %v", err)
	}
	waitExited(t, h, 10*time.Second)
	waitFor(t, 10*time.Second, "the cgroup to empty", func() bool {
		procs, err := FindCgroupProcs(h.CgroupPath())
		return err == nil && len(procs) == 0
	})
}

// TestKillTreeGroupGuard: once the shim has been reaped, its PID (the
// process group id) may belong to someone else, so no group kill happens.
func TestKillTreeGroupGuard(t *testing.T) {
	box := newBox(t, "guard")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff})
	if err := h.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExited(t, h, 10*time.Second)
	// Stand-in for a recycled group id: a process group of our own whose
	// id we plant in the handle. The guard must leave it alone.
	victim := startTrapper(t)
	h.pgid = victim.pid
	if err := h.KillTree(); err != nil {
		t.Fatal(err)
	}
	victim.assertUntouched(t)
}
