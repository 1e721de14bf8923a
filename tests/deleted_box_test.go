package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// TestBoxDirectoryDeletedUnderADeadSupervisor is an operator's sequence: a
// supervisor dies while a detached box runs, and the box's directory is
// deleted meanwhile. The next supervisor has no such box, so it does not
// list it, but it warns that processes run in the box's cgroup, naming
// them, and leaves them running (nothing verified them). A new box of the
// same ID then kills them and starts: in a generation cgroup made afresh,
// since the kernel kills at once whatever is cloned into a killed one.
func TestBoxDirectoryDeletedUnderADeadSupervisor(t *testing.T) {
	if _, ok := shimproc.CgroupAvailable(); !ok {
		t.Skip("no writable cgroup v2 hierarchy (needs root and cgroup2): boxes have no cgroup to be left in")
	}
	checkGoroutines(t)
	home := t.TempDir()
	tr := trackerFor(t, home)
	const id = "deleted-dir"
	tr.useBox(id)
	r := startReaper(t, "storm", childHomeEnv+"="+home, childIDsEnv+"="+id)
	f := r.next(t)
	if len(f) != 2 || f[0] != "pid" {
		t.Fatalf("the child printed %q first, want its pid", f)
	}
	child, _ := strconv.Atoi(f[1])
	pid := 0
	for done := false; !done || pid == 0; {
		switch f := r.next(t); f[0] {
		case "started", "ready":
			pid, _ = strconv.Atoi(f[2])
		case "failed":
			t.Fatalf("the child's start failed: %v", f[1:])
		case "done":
			done = true
		}
	}
	tr.trackTree(pid, "shim of the deleted box")
	killAndWait(t, child)
	old, err := identityOf(pid)
	if err != nil {
		t.Fatalf("the shim did not outlive its supervisor: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(home, "boxes", id)); err != nil {
		t.Fatal(err)
	}

	warns := &warnings{}
	h := startHarness(t, home, withConfig(func(c *actors.Config) { c.Logger.(*logrus.Logger).AddHook(warns) }))
	found := warns.about(id)
	if found == nil {
		t.Fatalf("no warning names box %s whose processes nobody supervises; warnings: %v", id, warns.all())
	}
	// The logger's redaction hook has turned the pid list into its text.
	pids := strings.Fields(strings.Trim(fmt.Sprint(found.Data["pids"]), "[]"))
	if !slices.Contains(pids, strconv.Itoa(pid)) || found.Data["cgroup"] == nil {
		t.Errorf("the warning %q %v does not name the shim %d and the cgroup", found.Message, found.Data, pid)
	}
	if !old.alive() {
		t.Fatalf("the shim %d was killed by a supervisor that never verified it", pid)
	}
	if list, err := h.sup.List(h.ctx(), actors.ListOptions{}); err != nil || len(list) != 0 {
		t.Errorf("List = %+v, %v; want no box", list, err)
	}

	st := h.startSleeper(id)
	if st.State != messages.StateRunning || st.PID == pid {
		t.Fatalf("start of a new box of that ID: state %q pid %d, want running in a new shim", st.State, st.PID)
	}
	eventually(t, "the deleted box's shim to be killed", func() (bool, string) {
		return !old.alive(), "still alive"
	})
}
