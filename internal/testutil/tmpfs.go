package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
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
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds a file open there: detach the mount,
			// so that the temporary directory can go, and say so.
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
