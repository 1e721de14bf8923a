package shimproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// CgroupMode says whether a spawned box gets its own cgroup v2.
type CgroupMode int

// The cgroup modes.
const (
	// CgroupAuto puts the box in its own cgroup when a writable cgroup v2
	// hierarchy exists, else relies on the process group.
	CgroupAuto CgroupMode = iota
	// CgroupOff never uses a cgroup: the process group is the box's tree.
	CgroupOff
	// CgroupRequired fails the spawn (messages.ErrCgroup) when no writable
	// cgroup v2 hierarchy exists.
	CgroupRequired
)

// DefaultCgroupParent is the cgroup (relative to the cgroup2 root) under
// which box cgroups are created when SpawnRequest.CgroupParent is empty.
const DefaultCgroupParent = "boxsup"

// cgroupRoots are the places a cgroup v2 hierarchy is mounted: pure v2 hosts
// mount it at /sys/fs/cgroup, hybrid hosts at /sys/fs/cgroup/unified.
var cgroupRoots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}

var cgroupProbe = sync.OnceValues(probeCgroupRoot)

// CgroupAvailable returns the root of a writable cgroup v2 hierarchy:
// /sys/fs/cgroup when it is cgroup2, else /sys/fs/cgroup/unified. Writability
// is probed once (create and remove a directory) and cached for the life of
// the process.
func CgroupAvailable() (root string, ok bool) {
	return cgroupProbe()
}

func probeCgroupRoot() (string, bool) {
	for _, root := range cgroupRoots {
		var st unix.Statfs_t
		if err := unix.Statfs(root, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
			continue
		}
		probe := filepath.Join(root, fmt.Sprintf(".boxsup-probe-%d-%d", os.Getpid(), time.Now().UnixNano()))
		if err := os.Mkdir(probe, 0o755); err != nil {
			continue
		}
		if err := unix.Rmdir(probe); err != nil {
			continue
		}
		return root, true
	}
	return "", false
}

// validCgroupParent checks SpawnRequest.CgroupParent: a clean relative path
// that stays below the cgroup root.
func validCgroupParent(parent string) error {
	if !filepath.IsLocal(parent) || filepath.Clean(parent) != parent {
		return messages.Errorf(messages.ErrBadSpec, "cgroup parent %q must be a clean relative path", parent)
	}
	return nil
}

// cgroupPopulated reports whether a cgroup holds any process, itself or in a
// child cgroup ("populated 1" in cgroup.events). A missing cgroup is empty.
func cgroupPopulated(dir string) (bool, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if errors.Is(err, unix.ENODEV) {
		return false, nil // being removed: it was empty
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
			return false, nil
		}
		// cgroup.events exists in every non-root cgroup; fall back to the
		// member list for odd set-ups.
		pids, err := FindCgroupProcs(dir)
		return len(pids) > 0, err
	}
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if key, val, ok := strings.Cut(sc.Text(), " "); ok && key == "populated" {
			return val == "1", nil
		}
	}
	return false, fmt.Errorf("%s/cgroup.events: no populated line", dir)
}

// checkBoxCgroupFree fails when the box's cgroup exists and still holds
// processes: another instance of the box is alive.
func checkBoxCgroupFree(dir, boxID string) error {
	busy, err := cgroupPopulated(dir)
	if err != nil {
		return messages.Errorf(messages.ErrCgroup, "checking %s: %v", dir, err)
	}
	if busy {
		return messages.Errorf(messages.ErrCgroup, "%s still holds processes (is another instance of box %s alive?)", dir, boxID)
	}
	return nil
}

// createBoxCgroup creates generation dir under the box's cgroup boxDir
// (both when missing) and opens it for CLONE_INTO_CGROUP.
//
// A dir that already exists (left by an earlier run) is removed when empty
// and created again, never reused: the kernel SIGKILLs at once any process
// cloned into a cgroup that was ever killed through cgroup.kill, itself or
// through an ancestor, and such a leftover may have been (strays in the
// box's cgroup are killed before a start, a stop kills the generation's),
// which nothing tells from user space. A fresh directory starts with no
// kill on it, even under a killed box cgroup. One that still holds a
// process fails: another instance of the box is alive.
func createBoxCgroup(boxDir, dir, boxID string) (*os.File, error) {
	err := mkdirCgroup(boxDir, dir)
	if errors.Is(err, fs.ErrExist) {
		if err := checkBoxCgroupFree(dir, boxID); err != nil {
			return nil, err
		}
		if err := removeCgroupTree(dir); err != nil {
			return nil, messages.Errorf(messages.ErrCgroup, "removing %s, left by an earlier run, to create it afresh: %v", dir, err)
		}
		err = mkdirCgroup(boxDir, dir)
	}
	if err != nil {
		return nil, messages.Errorf(messages.ErrCgroup, "creating %s: %v", dir, err)
	}
	raw, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Rmdir(dir)
		return nil, messages.Errorf(messages.ErrCgroup, "opening %s: %v", dir, err)
	}
	return os.NewFile(uintptr(raw), dir), nil
}

// mkdirCgroup creates the box's cgroup boxDir when missing and generation
// dir under it; dir existing already is fs.ErrExist.
func mkdirCgroup(boxDir, dir string) error {
	mkdir := func() error {
		if err := os.MkdirAll(boxDir, 0o755); err != nil {
			return err
		}
		return os.Mkdir(dir, 0o755)
	}
	err := mkdir()
	for tries := 0; errors.Is(err, fs.ErrNotExist) && tries < 3; tries++ {
		// The previous generation's release removed the (then empty) box
		// cgroup between the two mkdirs.
		err = mkdir()
	}
	return err
}

// removeIfEmpty removes a cgroup directory that holds no process and no
// child cgroup; anything else (busy, not empty, gone) is left as it is.
func removeIfEmpty(dir string) {
	_ = unix.Rmdir(dir)
}

// procCgroupV2 returns the cgroup v2 path of pid ("/rel/path" from the
// "0::/rel/path" line of /proc/PID/cgroup).
func procCgroupV2(pid int) (string, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return "", fmt.Errorf("pid %d: %w", pid, ErrGone)
		}
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if rel, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			return rel, nil
		}
	}
	return "", fmt.Errorf("/proc/%d/cgroup: no cgroup v2 entry", pid)
}

// verifyCgroupMember checks that pid is a member of the cgroup directory dir
// under root.
func verifyCgroupMember(pid int, root, dir string) error {
	want := "/" + strings.TrimPrefix(strings.TrimPrefix(dir, root), "/")
	got, err := procCgroupV2(pid)
	if err != nil {
		return messages.Errorf(messages.ErrCgroup, "verifying membership of pid %d: %w", pid, err)
	}
	if got != want {
		return messages.Errorf(messages.ErrCgroup, "pid %d is in cgroup %q, not in %q", pid, got, want)
	}
	return nil
}

// FindCgroupProcs lists the processes in a cgroup (its cgroup.procs), e.g. to
// find the shim of a box recorded as "starting" without an identity. A missing
// cgroup gives an error satisfying errors.Is(err, fs.ErrNotExist).
func FindCgroupProcs(cgroupPath string) ([]int, error) {
	raw, err := readKernelFile(filepath.Join(cgroupPath, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, line := range bytes.Fields(raw) {
		pid, err := strconv.Atoi(string(line))
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: bad pid %q", cgroupPath, line)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// killCgroup SIGKILLs every process in the cgroup: atomically through
// cgroup.kill (Linux 5.14+), else pid by pid through pidfds, repeated while
// members keep appearing (a member may fork while we kill). A missing cgroup
// has nothing to kill.
func killCgroup(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, "cgroup.kill"), os.O_WRONLY, 0)
	if err == nil {
		_, werr := f.WriteString("1")
		cerr := f.Close()
		if werr = errors.Join(werr, cerr); werr != nil {
			return messages.Errorf(messages.ErrCgroup, "writing %s/cgroup.kill: %v", dir, werr)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return messages.Errorf(messages.ErrCgroup, "opening %s/cgroup.kill: %v", dir, err)
	}
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		return nil
	}
	return killCgroupMembers(dir)
}

// killFallbackWait bounds killCgroupMembers: killed members stay listed in
// cgroup.procs until the kernel has torn them down.
const killFallbackWait = 5 * time.Second

// killCgroupMembers is the fallback for kernels without cgroup.kill: it
// SIGKILLs every listed member through its own pidfd, again and again (a
// member may fork while being killed), until the cgroup is empty.
func killCgroupMembers(dir string) error {
	deadline := time.Now().Add(killFallbackWait)
	for {
		pids, err := FindCgroupProcs(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return messages.Errorf(messages.ErrCgroup, "listing %s: %v", dir, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return messages.Errorf(messages.ErrCgroup, "%s: %d member(s) still alive %v after SIGKILL", dir, len(pids), killFallbackWait)
		}
		for _, pid := range pids {
			// Through a pidfd: a listed pid that exits and is recycled
			// meanwhile makes pidfd_open fail or name a process that is
			// checked to be in the cgroup below, never a stranger.
			if pfd, err := openPidFD(pid); err == nil {
				if rel, err := procCgroupV2(pid); err == nil && strings.HasSuffix(dir, rel) {
					_ = pfd.sendSignal(unix.SIGKILL)
				}
				_ = pfd.close()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// removeCgroup removes an empty cgroup directory, waiting up to wait for
// killed members to finish tearing down. A missing cgroup is not an error.
func removeCgroup(dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		default:
			return messages.Errorf(messages.ErrCgroup, "removing %s: %v", dir, err)
		}
	}
}

// RemoveCgroupParent removes the cgroup directory under which boxes of one
// home are created (SpawnRequest.CgroupParent), with the box and generation
// cgroups under it that hold no process, and the same in the cgroup v1
// hierarchies where limits mirror them; anything still in use is left
// alone without error, and so is a host without a writable cgroup2
// hierarchy. Called when a supervisor shuts down, so that homes that come
// and go leave nothing behind.
func RemoveCgroupParent(parent string) error {
	root, ok := CgroupAvailable()
	if !ok || parent == "" {
		return nil
	}
	if err := validCgroupParent(parent); err != nil {
		return err
	}
	dir := filepath.Join(root, parent)
	errs := []error{removeParentTree(dir)}
	for _, m := range v1Mirrors(dir) {
		errs = append(errs, removeParentTree(m))
	}
	return errors.Join(errs...)
}

// removeParentTree removes a home's cgroup parent dir with the empty box and
// generation cgroups below it; busy ones are left without error.
func removeParentTree(dir string) error {
	boxes, _ := os.ReadDir(dir)
	for _, b := range boxes {
		if !b.IsDir() {
			continue
		}
		gens, _ := os.ReadDir(filepath.Join(dir, b.Name()))
		for _, g := range gens {
			if g.IsDir() {
				removeIfEmpty(filepath.Join(dir, b.Name(), g.Name()))
			}
		}
		removeIfEmpty(filepath.Join(dir, b.Name()))
	}
	err := unix.Rmdir(dir)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT), errors.Is(err, unix.EBUSY), errors.Is(err, unix.ENOTEMPTY):
		return nil
	default:
		return messages.Errorf(messages.ErrCgroup, "removing %s: %v", dir, err)
	}
}
