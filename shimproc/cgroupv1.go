package shimproc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// On a hybrid host cgroup v2 is mounted for tracking only and the resource
// controllers live in cgroup v1 hierarchies (/sys/fs/cgroup/memory, ...).
// A box that needs such a controller also gets a cgroup in that hierarchy,
// at the same relative path as its cgroup v2: ROOT/boxsup/<hash>/ID/gen-N
// becomes MOUNT/boxsup/<hash>/ID/gen-N. These mirrors are created for the
// limits a spawn needs only, the shim joins them before it is handed its
// spec (so the guest, forked later, is born inside), and they are removed
// with the generation and the box. boxsup never creates, joins or removes
// a v1 cgroup anywhere else.

// v1Controllers are the controllers whose v1 hierarchies boxsup may use.
var v1Controllers = []string{controllerCPU, controllerMemory, controllerPids}

// v1Mounts maps each of v1Controllers that is mounted as a cgroup v1
// hierarchy to its mount point (e.g. "memory" → /sys/fs/cgroup/memory;
// co-mounted controllers share one, "/sys/fs/cgroup/cpu,cpuacct"). Read
// once from mountinfo.
var v1Mounts = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	if cgroups.IsCgroup2UnifiedMode() {
		return out
	}
	for _, ctl := range v1Controllers {
		if mnt, err := cgroups.FindCgroupMountpoint("", ctl); err == nil {
			out[ctl] = mnt
		}
	}
	return out
})

// v1Writable checks that a v1 hierarchy can take new cgroups (a read-only
// mount, as in many containers, cannot).
func v1Writable(mnt string) error {
	return unix.Access(mnt, unix.W_OK)
}

// v1MountPoints lists the distinct mount points of v1Mounts.
func v1MountPoints() []string {
	var out []string
	for _, mnt := range v1Mounts() {
		if !slices.Contains(out, mnt) {
			out = append(out, mnt)
		}
	}
	slices.Sort(out)
	return out
}

// v1Mirror returns the cgroup at the same place as the cgroup v2 directory
// dir in the v1 hierarchy mounted at mnt, or "" when dir is not under the
// cgroup v2 root.
func v1Mirror(mnt, dir string) string {
	root, ok := CgroupAvailable()
	if !ok || dir == "" {
		return ""
	}
	rel, ok := strings.CutPrefix(dir, root+"/")
	if !ok || !filepath.IsLocal(rel) {
		return ""
	}
	return filepath.Join(mnt, rel)
}

// v1Mirrors returns the v1 mirrors of the cgroup v2 directory dir in every
// v1 hierarchy boxsup may use, whether they exist or not.
func v1Mirrors(dir string) []string {
	var out []string
	for _, mnt := range v1MountPoints() {
		if m := v1Mirror(mnt, dir); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// createV1Cgroup creates a generation's cgroup dir (and the box's above it)
// in a v1 hierarchy. created lists, deepest last, the directories this call
// made, so that a failed spawn removes exactly those. An existing, empty
// generation cgroup is reused; one holding processes is messages.ErrCgroup.
func createV1Cgroup(dir string) (created []string, err error) {
	for tries := 0; ; tries++ {
		created, err = mkdirV1(dir)
		// ENOENT: the previous generation's release removed the (then
		// empty) box cgroup between two of our mkdirs; try again.
		if err == nil || !errors.Is(err, fs.ErrNotExist) || tries == 2 {
			break
		}
	}
	if err != nil {
		return nil, messages.Errorf(messages.ErrCgroup, "creating %s: %v", dir, err)
	}
	if len(created) == 0 || created[len(created)-1] != dir {
		pids, err := FindCgroupProcs(dir)
		if err != nil {
			return nil, messages.Errorf(messages.ErrCgroup, "checking %s: %v", dir, err)
		}
		if len(pids) > 0 {
			return nil, messages.Errorf(messages.ErrCgroup, "%s still holds processes %v", dir, pids)
		}
	}
	return created, nil
}

// mkdirV1 makes dir and its missing parents, returning those it made; on
// failure it removes them again.
func mkdirV1(dir string) (created []string, err error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue // a concurrent spawn of another box made a shared parent
		}
		if err != nil {
			removeV1Created(created)
			return nil, err
		}
		created = append(created, missing[i])
	}
	return created, nil
}

// removeV1Created removes what createV1Cgroup made, deepest first.
func removeV1Created(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		_ = removeCgroup(created[i], cgroupRemoveWait)
	}
}

// joinV1 moves pid (every thread of it) into the v1 cgroup dir.
func joinV1(dir string, pid int) error {
	if err := cgroups.WriteCgroupProc(dir, pid); err != nil {
		return messages.Errorf(messages.ErrCgroup, "moving pid %d into %s: %v", pid, dir, err)
	}
	return nil
}

// removeV1Gen removes the v1 mirrors of a generation's cgroup v2 dir once
// they are empty, and the box's mirror above each when no generation's is
// left. Missing ones are not an error; the first other failure is returned.
func removeV1Gen(genDir string, wait time.Duration) error {
	var errs []error
	for _, m := range v1Mirrors(genDir) {
		if err := removeCgroup(m, wait); err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.HasPrefix(filepath.Base(m), "gen-") {
			removeIfEmpty(filepath.Dir(m))
		}
	}
	return errors.Join(errs...)
}

// removeV1Box removes the v1 mirrors of a box's cgroup v2 dir, with the
// generation cgroups under them.
func removeV1Box(boxDir string) error {
	var errs []error
	for _, m := range v1Mirrors(boxDir) {
		errs = append(errs, removeCgroupTree(m))
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes dir and every (empty) cgroup below it, deepest
// first (a guest may make cgroups of its own); a missing dir is not an
// error.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return messages.Errorf(messages.ErrCgroup, "listing %s: %v", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			// A child of a child: a guest that made cgroups of its own
			// (systemd, a container runtime) leaves them, deepest first.
			errs = append(errs, removeCgroupTree(filepath.Join(dir, e.Name())))
		}
	}
	errs = append(errs, removeCgroup(dir, cgroupRemoveWait))
	return errors.Join(errs...)
}
