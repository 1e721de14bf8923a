package shimproc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/boxsup/boxsup/messages"
)

// LeftCgroup is a box cgroup under a home's cgroup parent that still holds
// processes although the home has no such box: nothing supervises them.
type LeftCgroup struct {
	ID   string // the box ID the cgroup is named after
	Dir  string // the box's cgroup directory (absolute)
	PIDs []int  // the processes in it and in its generations' cgroups
}

// SweepBoxCgroups looks at the box cgroups under a home's cgroup parent
// (SpawnRequest.CgroupParent) that belong to none of boxes, the IDs of the
// home's box directories: what a box whose directory was deleted by hand
// (or whose removal did not finish) left behind. An empty one is removed,
// with its cgroup v1 mirrors. One that still holds processes is returned
// and left as it is: nothing verifies what runs there, so nothing is
// signalled (a new box of that ID kills them before it starts). A host
// without a writable cgroup v2 hierarchy has none.
//
// Call it under the home lock, before the home's boxes are looked after: a
// box being created meanwhile would look left behind.
func SweepBoxCgroups(parent string, boxes []string) ([]LeftCgroup, error) {
	root, ok := CgroupAvailable()
	if !ok || parent == "" {
		return nil, nil
	}
	if err := validCgroupParent(parent); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, parent)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, messages.Errorf(messages.ErrCgroup, "listing %s: %v", dir, err)
	}
	var left []LeftCgroup
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || slices.Contains(boxes, e.Name()) {
			continue
		}
		boxCg := filepath.Join(dir, e.Name())
		pids, err := cgroupTreeProcs(boxCg)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // removed meanwhile
		case err != nil:
			errs = append(errs, messages.Errorf(messages.ErrCgroup, "listing the processes in %s: %v", boxCg, err))
		case len(pids) > 0:
			left = append(left, LeftCgroup{ID: e.Name(), Dir: boxCg, PIDs: pids})
		default:
			errs = append(errs, RemoveBoxCgroup(boxCg))
		}
	}
	return left, errors.Join(errs...)
}
