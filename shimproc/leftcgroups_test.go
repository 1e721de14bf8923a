package shimproc

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestSweepBoxCgroups: under a home's cgroup parent, the cgroup of a box the
// home still has is left alone; an empty one of a box it lacks is removed;
// one of a box it lacks that still holds processes is reported with them,
// and nothing in it is signalled.
func TestSweepBoxCgroups(t *testing.T) {
	t.Parallel()
	root := requireCgroup(t)
	parent := testCgroupParent(t)
	kept := filepath.Join(root, parent, "kept", "gen-1")
	empty := filepath.Join(root, parent, "empty", "gen-3")
	for _, dir := range []string{kept, empty} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, dir := range []string{kept, filepath.Dir(kept), empty, filepath.Dir(empty)} {
			_ = syscall.Rmdir(dir)
		}
	})
	box := newBox(t, "orphan")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupRequired, CgroupParent: parent})
	tree := descendants(h.PID())

	left, err := SweepBoxCgroups(parent, []string{"kept"})
	if err != nil {
		t.Fatalf("SweepBoxCgroups: %v", err)
	}
	if len(left) != 1 || left[0].ID != box.ID || left[0].Dir != filepath.Dir(h.CgroupPath()) {
		t.Fatalf("SweepBoxCgroups = %+v, want box %s in %s only", left, box.ID, filepath.Dir(h.CgroupPath()))
	}
	got := slices.Sorted(slices.Values(left[0].PIDs))
	if want := slices.Sorted(slices.Values(tree)); !slices.Equal(got, want) {
		t.Errorf("reported pids %v, want the shim and its guest %v", got, want)
	}
	for _, pid := range tree {
		if !alive(pid) {
			t.Errorf("pid %d in the reported cgroup is gone: nothing may be signalled", pid)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the cgroup of a box the home has: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(empty)); !os.IsNotExist(err) {
		t.Errorf("the empty cgroup of a box the home lacks is still there (stat: %v)", err)
	}
}
