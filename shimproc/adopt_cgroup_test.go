package shimproc

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestAdoptRefusesACgroupThatIsNotTheBoxs: the cgroup a state record names
// becomes the kill target of an adopted shim only when it lies under the
// box's own cgroup and holds the shim; another cgroup (the hierarchy's
// root, a generation of the box the shim is not in) is ErrUnverified, and
// nothing is signalled or killed (issue: the recorded cgroup was used as the
// kill target even when the adopted pid was not in it).
func TestAdoptRefusesACgroupThatIsNotTheBoxs(t *testing.T) {
	root := requireCgroup(t)
	box := newBox(t, "cgcheck")
	parent := testCgroupParent(t)
	res := spawnOrphan(t, box, CgroupRequired, parent, "/bin/sleep", "30")
	boxCg, err := BoxCgroupDir(CgroupRequired, parent, box.ID)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(boxCg, "gen-999")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(empty) })

	own, err := procCgroupV2(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for name, cg := range map[string]string{
		"the hierarchy's root":            root,
		"the test's own cgroup":           root + own,
		"a generation the shim is not in": empty,
		"the cgroup above the box's":      filepath.Join(root, parent),
	} {
		h, err := Adopt(box, res.Identity, AdoptOptions{Cgroup: cg, CgroupParent: boxCg})
		if err == nil {
			_ = h.Close()
			t.Fatalf("%s (%s): Adopt succeeded; want ErrUnverified", name, cg)
		}
		if !errors.Is(err, messages.ErrUnverified) {
			t.Errorf("%s (%s): Adopt = %v; want ErrUnverified", name, cg, err)
		}
	}
	if !alive(res.Identity.PID) {
		t.Fatal("a refused adoption signalled the shim")
	}
	if pids := inCgroup(cgroupRel(t, res.Cgroup)); len(pids) != 2 {
		t.Fatalf("the box's cgroup holds %v after the refusals; want its shim and guest, untouched", pids)
	}

	h, err := Adopt(box, res.Identity, AdoptOptions{Cgroup: res.Cgroup, CgroupParent: boxCg})
	if err != nil {
		t.Fatalf("Adopt with the box's own cgroup: %v", err)
	}
	cleanupHandle(t, h)
}
