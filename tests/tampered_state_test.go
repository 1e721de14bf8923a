package tests

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// foreignCgroup creates a cgroup outside boxsup's (under the cgroup v2 root,
// not under boxsup/); "" when this host has no writable cgroup v2
// hierarchy. Cleanup removes it, after the cleanups registered later (the
// processes put in it) have run.
func foreignCgroup(t *testing.T) string {
	t.Helper()
	root, ok := shimproc.CgroupAvailable()
	if !ok {
		return ""
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	dir := filepath.Join(root, "boxsup-test-foreign-"+hex.EncodeToString(b))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("creating a foreign cgroup: %v", err)
	}
	t.Cleanup(func() {
		// A killed member leaves the cgroup once the kernel has torn it
		// down: poll.
		deadline := time.Now().Add(waitTimeout)
		for {
			err := os.Remove(dir)
			if err == nil || os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("removing the foreign cgroup %s: %v", dir, err)
				return
			}
			time.Sleep(pollInterval)
		}
	})
	return dir
}

// joinCgroup moves pid into cgroup dir.
func joinCgroup(t *testing.T, dir string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("moving pid %d into cgroup %s: %v", pid, dir, err)
	}
}

// cgroupHolds reports whether cgroup dir exists and lists pid.
func cgroupHolds(dir string, pid int) bool {
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(raw)) {
		if f == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

// TestTamperedStateCannotAimAtAnotherProcess: state.json is input. A record
// altered to name an unrelated process by its full identity (pid, start
// time and boot id copied from /proc, so that only the shim check can tell)
// and a cgroup outside the box's makes the next supervisor report the box
// lost, never signal that process or kill that cgroup, and neither do Kill,
// Stop and a forced Remove of the box afterwards.
func TestTamperedStateCannotAimAtAnotherProcess(t *testing.T) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name   string
		cgroup shimproc.CgroupMode
	}{{"cgroup", shimproc.CgroupAuto}, {"no-cgroup", shimproc.CgroupOff}} {
		for _, state := range []messages.BoxState{messages.StateRunning, messages.StateStopping, messages.StateStarting} {
			t.Run(fmt.Sprintf("%s/%s", mode.name, state), func(t *testing.T) {
				checkGoroutines(t)
				home := t.TempDir()
				cfg := withConfig(func(c *actors.Config) { c.Cgroup = mode.cgroup })
				first := startHarness(t, home, cfg)
				first.startSleeper("web")
				if err := first.sup.Shutdown(first.ctx(), actors.StopAll); err != nil {
					t.Fatal(err)
				}

				cg := foreignCgroup(t)
				victim := startUnrelated(t)
				id, err := identityOf(victim.Process.Pid)
				if err != nil {
					t.Fatal(err)
				}
				if cg != "" {
					joinCgroup(t, cg, id.PID)
				}
				plantState(t, home, "web", func(rec *messages.StateRecord) {
					rec.State = state
					rec.Identity = messages.Identity{PID: id.PID, StartTime: id.Start, BootID: strings.TrimSpace(string(boot))}
					rec.Cgroup = cg
					if state == messages.StateStarting {
						rec.Identity = messages.Identity{} // only where to look: the cgroup
					}
				})

				h := startHarness(t, home, cfg)
				st := h.status("web")
				// (A start has no identity to be lost: the box's own cgroup
				// holds no shim, and its last exit.json says how it ended.)
				if st.State.Live() || state != messages.StateStarting && !strings.Contains(st.Reason, "lost") {
					t.Errorf("box with a tampered record: state %q reason %q, want it at rest and lost", st.State, st.Reason)
				}
				if st.PID == id.PID {
					t.Errorf("the box reports pid %d, the unrelated process", st.PID)
				}
				check := func(when string) {
					t.Helper()
					requireUntouched(t, when, victim)
					if cg != "" && !cgroupHolds(cg, id.PID) {
						t.Errorf("%s: the foreign cgroup %s was touched (removed, or emptied)", when, cg)
					}
				}
				check("after the reconcile")
				if _, err := h.sup.Kill(h.ctx(), "web"); err != nil {
					t.Errorf("Kill: %v", err)
				}
				check("after Kill")
				if _, err := h.sup.Stop(h.ctx(), "web", time.Second); err != nil {
					t.Errorf("Stop: %v", err)
				}
				check("after Stop")
				if _, err := h.sup.Remove(h.ctx(), "web", true); err != nil {
					t.Errorf("Remove(force): %v", err)
				}
				check("after Remove(force)")
			})
		}
	}
}

// plantState rewrites box id's state.json through edit, as a tampering
// hand (or a damaged disk) would.
func plantState(t *testing.T, home, id string, edit func(*messages.StateRecord)) {
	t.Helper()
	hm, err := layout.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	box, err := hm.Box(id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := box.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	edit(&rec)
	if err := box.WriteState(rec); err != nil {
		t.Fatal(err)
	}
}
