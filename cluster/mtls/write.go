package mtls

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// WriteNew writes data to dir/name, which must not exist yet (O_EXCL, no
// symlink followed), with mode, and syncs it. Keys get 0600, certificates
// 0644.
func WriteNew(dir, name string, data []byte, mode os.FileMode) error {
	path := filepath.Join(dir, name)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(mode.Perm()))
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s exists already; not overwriting it: %w", path, os.ErrExist)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	// The umask may have narrowed the mode; never widened it, so set it
	// exactly once the file is ours.
	if err := f.Chmod(mode.Perm()); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// ReadTrusted reads a PEM file under the same rules as Load: no symlink, a
// regular file owned by the caller or root, not writable by others, and for
// a key (secret) not readable by them.
func ReadTrusted(path string, secret bool) ([]byte, error) { return readTrusted(path, secret) }
