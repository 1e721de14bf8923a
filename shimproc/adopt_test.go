package shimproc

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

func TestAdoptOrphan(t *testing.T) {
	for _, tc := range cgroupModes {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == CgroupRequired {
				requireCgroup(t)
			}
			box := newBox(t, "orphan")
			res := spawnOrphan(t, box, tc.mode, testCgroupParent(t), "/bin/sleep", "30")
			pid := res.Identity.PID
			st, err := readProcStat(pid)
			if err != nil || st.PPID == os.Getpid() {
				t.Fatalf("the orphan %d: %+v, %v; want a live non-child", pid, st, err)
			}

			h, err := Adopt(box, res.Identity, AdoptOptions{Cgroup: res.Cgroup})
			if err != nil {
				t.Fatalf("Adopt: %v", err)
			}
			t.Cleanup(func() { cleanupHandle(t, h) })
			if h.Owned() {
				t.Error("an adopted non-child must not be owned")
			}
			if h.Identity() != res.Identity || h.CgroupPath() != res.Cgroup {
				t.Errorf("handle identity %+v cgroup %q, want %+v %q", h.Identity(), h.CgroupPath(), res.Identity, res.Cgroup)
			}
			if h.TakeKeepalive() != nil {
				t.Error("an adopted handle has no keepalive to give")
			}
			if err := h.WaitReady(t.Context()); err != nil {
				t.Errorf("WaitReady on an adopted handle = %v, want nil", err)
			}
			m, err := h.Metrics()
			if err != nil || m.Processes != 2 {
				t.Errorf("Metrics() = %+v, %v; want shim and guest", m, err)
			}

			if err := h.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("Signal: %v", err)
			}
			waitExited(t, h, 10*time.Second)
			rec := h.ExitStatus()
			if rec.Source != messages.SourceExitFile || rec.Signal != "SIGTERM" || rec.ShellCode() != 143 {
				t.Errorf("ExitStatus() = %+v, want SIGTERM / 143 from exit.json", rec)
			}
			if err := h.Signal(syscall.SIGTERM); !errors.Is(err, ErrGone) {
				t.Errorf("Signal after the exit = %v, want ErrGone", err)
			}
		})
	}
}

func TestAdoptOrphanKillTree(t *testing.T) {
	for _, tc := range cgroupModes {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode == CgroupRequired {
				requireCgroup(t)
			}
			box := newBox(t, "orphankill")
			res := spawnOrphan(t, box, tc.mode, testCgroupParent(t), stubbornGuest(false)...)
			h, err := Adopt(box, res.Identity, AdoptOptions{Cgroup: res.Cgroup})
			if err != nil {
				t.Fatalf("Adopt: %v", err)
			}
			t.Cleanup(func() { cleanupHandle(t, h) })
			var tree []int
			waitFor(t, 10*time.Second, "the guest's tree to form", func() bool {
				tree = descendants(h.PID())
				return len(tree) >= 4
			})
			if err := h.KillTree(); err != nil {
				t.Fatalf("KillTree: %v", err)
			}
			waitExited(t, h, 10*time.Second)
			if rec := h.ExitStatus(); rec.Known() || rec.Source != messages.SourceNone {
				t.Errorf("ExitStatus() = %+v, want unknown: a SIGKILLed non-child leaves no record", rec)
			}
			waitFor(t, 10*time.Second, "every process of the tree to die", func() bool {
				for _, p := range tree {
					if alive(p) {
						return false
					}
				}
				return true
			})
		})
	}
}

func TestAdoptOwnChildReapsIt(t *testing.T) {
	box := newBox(t, "mine")
	tr := startTrapper(t)
	id, err := ReadIdentity(tr.pid)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Adopt(box, id, AdoptOptions{})
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	t.Cleanup(func() { cleanupHandle(t, h) })
	if !h.Owned() {
		t.Fatal("adopting our own child must give an owned handle")
	}
	if err := h.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExited(t, h, 10*time.Second)
	if rec := h.ExitStatus(); rec.Source != messages.SourceWait || rec.ExitCode != 0 || rec.Signal != "" {
		t.Errorf("ExitStatus() = %+v, want exit 0 from the wait status", rec)
	}
	if !tr.has("term") {
		t.Error("the trapper did not get SIGTERM")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(tr.pid)); err == nil {
		t.Errorf("pid %d was not reaped", tr.pid)
	}
}

func TestAdoptZombie(t *testing.T) {
	box := newBox(t, "zombie")
	child := startChild(t, "/bin/sh", "-c", "exit 7")
	pid := child.Process.Pid
	waitFor(t, 10*time.Second, "the child to become a zombie", func() bool {
		st, err := readProcStat(pid)
		return err == nil && st.zombie()
	})
	id, err := ReadIdentity(pid)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Adopt(box, id, AdoptOptions{})
	if err != nil {
		t.Fatalf("Adopt of a zombie with a matching identity: %v", err)
	}
	t.Cleanup(func() { cleanupHandle(t, h) })
	waitExited(t, h, 10*time.Second)
	if rec := h.ExitStatus(); rec.ExitCode != 7 || rec.Source != messages.SourceWait {
		t.Errorf("ExitStatus() = %+v, want exit 7 from the wait status", rec)
	}
}

func TestAdoptGone(t *testing.T) {
	box := newBox(t, "gone")
	child := startChild(t, "/bin/true")
	pid := child.Process.Pid
	waitFor(t, 10*time.Second, "the child to become a zombie", func() bool {
		st, err := readProcStat(pid)
		return err == nil && st.zombie()
	})
	id, err := ReadIdentity(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := Adopt(box, id, AdoptOptions{}); !errors.Is(err, ErrGone) {
		t.Fatalf("Adopt of a reaped pid = %v, want ErrGone", err)
	}
	if _, err := ReadIdentity(pid); !errors.Is(err, ErrGone) {
		t.Errorf("ReadIdentity of a reaped pid = %v, want ErrGone", err)
	}
}

func TestAdoptIdentityMismatch(t *testing.T) {
	box := newBox(t, "reused")
	tr := startTrapper(t)
	real, err := ReadIdentity(tr.pid)
	if err != nil {
		t.Fatal(err)
	}
	wrongStart, wrongBoot := real, real
	wrongStart.StartTime++
	wrongBoot.BootID = "00000000-0000-0000-0000-000000000000"
	for name, rec := range map[string]messages.Identity{"start time": wrongStart, "boot id": wrongBoot} {
		h, err := Adopt(box, rec, AdoptOptions{})
		if err == nil {
			_ = h.Close()
			t.Fatalf("%s: Adopt succeeded, want ErrIdentityMismatch", name)
		}
		if !errors.Is(err, messages.ErrIdentityMismatch) {
			t.Errorf("%s: Adopt = %v, want ErrIdentityMismatch", name, err)
		}
	}
	for _, pid := range []int{0, 1, -5} {
		if _, err := Adopt(box, messages.Identity{PID: pid, StartTime: 1, BootID: real.BootID}, AdoptOptions{}); !errors.Is(err, messages.ErrIdentityMismatch) {
			t.Errorf("Adopt of pid %d = %v, want ErrIdentityMismatch", pid, err)
		}
	}
	tr.assertUntouched(t)
}

// TestAdoptOthersZombieIsGone: a process that exited but whose parent is not
// us (a zombie awaiting someone else, or already reaped by init) is gone, not
// adopted as running.
func TestAdoptOthersZombieIsGone(t *testing.T) {
	box := newBox(t, "otherszombie")
	out, err := exec.Command("/bin/sh", "-c", "/bin/sleep 0.3 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := ReadIdentity(pid)
	if err != nil {
		t.Fatalf("identity of the orphaned sleep: %v", err)
	}
	waitFor(t, 10*time.Second, "the orphan to exit", func() bool {
		st, err := readProcStat(pid)
		return err != nil || st.zombie()
	})
	if _, err := Adopt(box, id, AdoptOptions{}); !errors.Is(err, ErrGone) {
		t.Fatalf("Adopt of an exited non-child = %v, want ErrGone", err)
	}
}
