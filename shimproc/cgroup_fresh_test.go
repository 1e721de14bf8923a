package shimproc

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSpawnMakesAnExistingCgroupAfresh: the kernel SIGKILLs at once any
// process cloned into a cgroup that was ever killed through cgroup.kill,
// itself or through an ancestor. A generation's cgroup left by an earlier
// run may have been (a supervisor kills what is left in a box's cgroup
// before a start, and a stop kills the generation's), and nothing tells
// from user space, so Spawn never reuses one: it removes the empty
// leftover and creates the directory again.
func TestSpawnMakesAnExistingCgroupAfresh(t *testing.T) {
	for _, tc := range []struct {
		name   string
		killed func(box, gen string) string // the cgroup killed before the spawn, "" for none
		nested bool                         // the guest made cgroups of its own in gen
	}{
		{"left-empty", func(string, string) string { return "" }, false},
		{"box-killed", func(box, _ string) string { return box }, false},
		{"generation-killed", func(_, gen string) string { return gen }, false},
		// A guest made cgroups of its own in its generation's (found by an
		// operator: the ID could never be started again).
		{"with-nested-cgroups", func(_, gen string) string { return gen }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := requireCgroup(t)
			box := newBox(t, "afresh-"+tc.name)
			parent := testCgroupParent(t)
			boxCg := filepath.Join(root, parent, box.ID)
			gen := GenCgroupDir(boxCg, 1)
			if err := os.MkdirAll(gen, 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.nested {
				if err := os.MkdirAll(filepath.Join(gen, "sub", "subsub"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if dir := tc.killed(boxCg, gen); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
					t.Skipf("no cgroup.kill here (Linux 5.14+): %v", err)
				}
			}
			h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupRequired,
				CgroupParent: parent, Generation: 1})
			if h.CgroupPath() != gen {
				t.Errorf("CgroupPath() = %q, want %q", h.CgroupPath(), gen)
			}
			if tree := descendants(h.PID()); len(tree) != 2 {
				t.Errorf("tree of the shim = %v, want shim and guest", tree)
			}
		})
	}
}
