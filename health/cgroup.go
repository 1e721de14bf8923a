package health

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/shimproc"
)

// probeCgroups are the cgroups of a box generation that an exec probe is
// born in: the generation's cgroup v2 directory, opened for
// CLONE_INTO_CGROUP, and on a hybrid host the cgroup v1 mirrors that
// shimproc created for the generation's limits (MOUNT/<same relative
// path>), which the forking thread joins first (v1 places threads one by
// one, and a child is born in its parent thread's cgroups).
type probeCgroups struct {
	v2      *os.File // nil: the box has no cgroup
	v1Tasks []string // the "tasks" file of each v1 mirror that exists
}

// openProbeCgroups opens the cgroups of the generation whose cgroup v2
// directory is dir ("" for none). dir must be a cgroup v2 directory.
func openProbeCgroups(dir string) (*probeCgroups, error) {
	pc := &probeCgroups{}
	if dir == "" {
		return pc, nil
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the box's cgroup: %w", err)
	}
	pc.v2 = os.NewFile(uintptr(fd), dir)
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		pc.close()
		return nil, fmt.Errorf("%s is not a cgroup v2 directory", dir)
	}
	root, ok := shimproc.CgroupAvailable()
	rel, under := strings.CutPrefix(dir, root+"/")
	if !ok || !under || !filepath.IsLocal(rel) {
		return pc, nil // not below the hierarchy shimproc uses: no mirrors
	}
	for _, mnt := range v1MountPoints() {
		mirror := filepath.Join(mnt, rel)
		if fi, err := os.Lstat(mirror); err == nil && fi.IsDir() {
			pc.v1Tasks = append(pc.v1Tasks, filepath.Join(mirror, "tasks"))
		}
	}
	return pc, nil
}

// joinV1 moves the calling thread into the v1 mirrors. The caller is a
// goroutine locked to its thread that ends without unlocking it: the
// thread never runs anything else afterwards.
func (pc *probeCgroups) joinV1() error {
	tid := strconv.Itoa(unix.Gettid())
	for _, tasks := range pc.v1Tasks {
		if err := os.WriteFile(tasks, []byte(tid), 0); err != nil {
			return fmt.Errorf("joining %s: %w", filepath.Dir(tasks), err)
		}
	}
	return nil
}

func (pc *probeCgroups) close() {
	if pc.v2 != nil {
		_ = pc.v2.Close()
		pc.v2 = nil
	}
}

// v1Controllers are the v1 hierarchies shimproc mirrors a generation in
// for its limits.
var v1Controllers = []string{"cpu", "memory", "pids"}

// v1MountPoints lists the distinct mount points of the v1 hierarchies of
// v1Controllers on this host (none on a pure cgroup v2 host), read once.
var v1MountPoints = sync.OnceValue(func() []string {
	var out []string
	if cgroups.IsCgroup2UnifiedMode() {
		return nil
	}
	for _, ctl := range v1Controllers {
		if mnt, err := cgroups.FindCgroupMountpoint("", ctl); err == nil && !slices.Contains(out, mnt) {
			out = append(out, mnt)
		}
	}
	slices.Sort(out)
	return out
})
