package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unmountGrace bounds the wait for processes that are exiting to let go of
// a small disk; unmountPoll is how often the unmount is tried meanwhile.
const (
	unmountGrace = 5 * time.Second
	unmountPoll  = 10 * time.Millisecond
)

// SmallDisk is a small tmpfs that a test fills to ENOSPC, the way a full
// disk fails writes, and frees again.
type SmallDisk struct {
	t *testing.T
	// Dir is the mount point (mode 0700, owned by the test's uid).
	Dir    string
	filler string
}

// MountSmallDisk mounts a tmpfs of size (mount's syntax: "2m") on a fresh
// directory and unmounts it when the test ends, after freeing it. The test
// is skipped, with the reason, where that is impossible (not root, no
// permission to mount).
func MountSmallDisk(t *testing.T, size string) *SmallDisk {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a %s tmpfs on %s: %v", size, dir, err)
	}
	d := &SmallDisk{t: t, Dir: dir, filler: filepath.Join(dir, "filler")}
	t.Cleanup(func() {
		err := syscall.Unmount(dir, 0)
		if errors.Is(err, syscall.EBUSY) {
			// A process killed a moment ago (a guest swept with its
			// cgroup) closes its files while it exits, after the test saw
			// it go; wait for that, bounded, and name who still holds on.
			holders := holdersOf(dir)
			deadline := time.Now().Add(unmountGrace)
			for errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline) {
				time.Sleep(unmountPoll)
				err = syscall.Unmount(dir, 0)
			}
			if err != nil {
				err = fmt.Errorf("%w (held by %v at first try, by %v now)", err, holders, holdersOf(dir))
			}
		}
		if err != nil {
			// Detach the mount, so that the temporary directory can go,
			// and say so.
			t.Errorf("unmounting %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return d
}

// Fill writes a filler file until the filesystem has no byte left.
func (d *SmallDisk) Fill() {
	d.t.Helper()
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatalf("creating the filler: %v", err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, n := range []int{len(buf), 4096, 512, 1} {
		for {
			if _, err := f.Write(buf[:n]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					d.t.Fatalf("filling the disk: %v", err)
				}
				break
			}
		}
	}
}

// Free removes the filler; freeing a disk that is not full does nothing.
func (d *SmallDisk) Free() {
	d.t.Helper()
	if err := os.Remove(d.filler); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.t.Fatalf("freeing the disk: %v", err)
	}
}

// holdersOf lists the processes whose working directory, root or open
// files are under dir, as "pid:comm", for a failure message.
func holdersOf(dir string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid := p.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		links := []string{"/proc/" + pid + "/cwd", "/proc/" + pid + "/root"}
		fds, _ := os.ReadDir("/proc/" + pid + "/fd")
		for _, fd := range fds {
			links = append(links, "/proc/"+pid+"/fd/"+fd.Name())
		}
		for _, l := range links {
			if target, err := os.Readlink(l); err == nil && (target == dir || strings.HasPrefix(target, dir+"/")) {
				comm, _ := os.ReadFile("/proc/" + pid + "/comm")
				out = append(out, pid+":"+strings.TrimSpace(string(comm))+" "+filepath.Base(l))
				break
			}
		}
	}
	return out
}
