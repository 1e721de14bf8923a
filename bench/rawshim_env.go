package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/shimproc"
)

// A floor must run the shim as cheaply as boxsup can, or it is no floor.
// shimproc gives every shim GOMAXPROCS=1 (a faster start, less memory) and,
// where cgroup v2 is writable and cgroups are not off, a cgroup of its own, created into with
// CLONE_INTO_CGROUP and named in BOXSUP_CGROUP so that the shim's exit sweep
// reads cgroup.procs instead of scanning all of /proc. Without them, raw
// shims started slower and a storm of raw stops took 13–24 s for 1000, ten
// times boxsup's. rawShimEnv and rawCgroups give raw shims the same.

// rawShimGOMAXPROCS is the value shimproc puts in every shim's environment.
const rawShimGOMAXPROCS = "1"

// rawShimEnv is this process's environment with GOMAXPROCS and the shim's
// cgroup variable set as shimproc sets them (cgroup "" leaves it out).
func rawShimEnv(cgroup string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, shimproc.CgroupEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, "GOMAXPROCS="+rawShimGOMAXPROCS)
	if cgroup != "" {
		env = append(env, shimproc.CgroupEnv+"="+cgroup)
	}
	return env
}

// cgroupRemoveWait bounds the wait for a cgroup to become removable: the
// members of a reaped shim's cgroup, or the boxes' cgroups under a home's,
// may still be tearing down.
const cgroupRemoveWait = 2 * time.Second

// rawCgroups makes one cgroup per raw shim under a parent of this process,
// boxsup-bench-raw-PID in the cgroup v2 root, when that root is writable
// and the run's supervisors use cgroups too (useRawCgroups).
var rawCgroups struct {
	mu     sync.Mutex
	off    bool   // the run's supervisors have no cgroups (-cgroup off): nor do raw shims
	parent string // made lazily; "" until then, or without a writable hierarchy
	next   atomic.Uint64
}

// useRawCgroups says whether the raw shims of the run get cgroups, as its
// supervisors' boxes do.
func useRawCgroups(on bool) {
	rawCgroups.mu.Lock()
	defer rawCgroups.mu.Unlock()
	rawCgroups.off = !on
}

// rawCgroupParent returns the parent of the raw shims' cgroups, making it
// on first use, or "" when raw shims get none.
func rawCgroupParent() string {
	rawCgroups.mu.Lock()
	defer rawCgroups.mu.Unlock()
	if rawCgroups.off {
		return ""
	}
	if rawCgroups.parent == "" {
		root, ok := shimproc.CgroupAvailable()
		if !ok {
			return ""
		}
		parent := filepath.Join(root, "boxsup-bench-raw-"+strconv.Itoa(os.Getpid()))
		if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return ""
		}
		rawCgroups.parent = parent
	}
	return rawCgroups.parent
}

// newRawCgroup creates a fresh cgroup for one raw shim and opens it for
// CLONE_INTO_CGROUP. It returns "" and nil when raw shims get none.
func newRawCgroup() (string, *os.File, error) {
	parent := rawCgroupParent()
	if parent == "" {
		return "", nil, nil
	}
	dir := filepath.Join(parent, "r"+strconv.FormatUint(rawCgroups.next.Add(1), 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("raw shim cgroup: %w", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		_ = unix.Rmdir(dir)
		return "", nil, fmt.Errorf("raw shim cgroup: %w", err)
	}
	return dir, f, nil
}

// intoCgroup sets attr to start the process inside the cgroup open as f.
func intoCgroup(attr *syscall.SysProcAttr, f *os.File) {
	attr.UseCgroupFD = true
	attr.CgroupFD = int(f.Fd())
}

// removeCgroupDir removes an (emptied) cgroup directory, retrying while it
// is busy or not yet empty for up to cgroupRemoveWait. A missing one is not
// an error.
func removeCgroupDir(dir string) error {
	deadline := time.Now().Add(cgroupRemoveWait)
	for {
		err := unix.Rmdir(dir)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case (errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOTEMPTY)) && time.Now().Before(deadline):
			time.Sleep(5 * time.Millisecond)
		default:
			return fmt.Errorf("removing %s: %w", dir, err)
		}
	}
}

// removeRawCgroupParent removes the parent of the raw shims' cgroups once
// they are all gone (the end of a run); a later run makes a new one.
func removeRawCgroupParent() error {
	rawCgroups.mu.Lock()
	defer rawCgroups.mu.Unlock()
	if rawCgroups.parent == "" {
		return nil
	}
	if err := removeCgroupDir(rawCgroups.parent); err != nil {
		return err
	}
	rawCgroups.parent = ""
	return nil
}
