package layout

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// Every file under the home is opened relative to a directory descriptor,
// one path element at a time, never following a symbolic link: someone who
// can write a box directory must not be able to redirect boxsup's reads and
// writes elsewhere (a shim.log pointing at /etc/shadow). openat2(2) with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS says so to the kernel. Kernels older
// than 5.6 lack it, and container seccomp profiles answer ENOSYS for
// system calls they do not know: there openat(2) with O_NOFOLLOW is used instead, which gives the same guarantee
// here because every name layout opens is a single path element (a
// validated box ID or a fixed file name), so there is no intermediate
// component to follow and no ".." to climb.

// noOpenat2 is set once openat2 proved unavailable.
var noOpenat2 atomic.Bool

// openAt opens name, a single path element, in the directory dirfd without
// following a symbolic link, close-on-exec. The result is an *os.File
// named dirPath/name for error messages.
func openAt(dirfd int, dirPath, name string, flags int, perm uint32) (*os.File, error) {
	fd, err := openat2Retry(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, symlinkErr(filepath.Join(dirPath, name), err)
	}
	if flags&unix.O_NONBLOCK != 0 {
		// O_NONBLOCK only kept a planted FIFO from blocking the open; the
		// caller checks the type before any I/O, and a regular file (or a
		// child's stdout) wants ordinary blocking semantics.
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
		}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dirPath, name)), nil
}

// openat2Retry is openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, falling
// back to openat when the kernel has no openat2, and retrying EINTR.
func openat2Retry(dirfd int, name string, flags int, perm uint32) (int, error) {
	for {
		var fd int
		var err error
		if !noOpenat2.Load() {
			how := unix.OpenHow{
				Flags:   uint64(flags),
				Mode:    uint64(perm),
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
			}
			if flags&unix.O_CREAT == 0 {
				how.Mode = 0 // openat2 refuses a mode without O_CREAT
			}
			fd, err = unix.Openat2(dirfd, name, &how)
			if err == unix.ENOSYS {
				noOpenat2.Store(true)
				continue
			}
		} else {
			fd, err = unix.Openat(dirfd, name, flags, perm)
		}
		if err == unix.EINTR || err == unix.EAGAIN && flags&unix.O_NONBLOCK == 0 {
			continue
		}
		return fd, err
	}
}

// symlinkErr turns the errno of a refused symbolic link (ELOOP from
// O_NOFOLLOW or RESOLVE_NO_SYMLINKS, EXDEV from RESOLVE_BENEATH) into
// messages.ErrUnsafeHome: a link inside the home is planted, not ours.
func symlinkErr(path string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s is a symbolic link: boxsup never follows one inside the home; fix: remove it", path)
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}

// Directory descriptors are O_PATH: opening names under them, fstat and
// renames need only search permission, as path lookups did, so a user who
// may merely traverse a root-owned home (to reach its control socket) still
// can. syncDir reopens one for reading to fsync it.

// openDirPath opens the directory at path (following the path as given:
// callers pass paths checked by Open) for use as a dirfd.
func openDirPath(path string) (*os.File, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	fd, err := unix.Open(path, flags, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openDirAt opens the directory name inside dir without following a link.
func openDirAt(dir *os.File, name string) (*os.File, error) {
	d, err := openAt(int(dir.Fd()), dir.Name(), name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ENOTDIR) {
		// O_DIRECTORY|O_NOFOLLOW on a symbolic link gives ENOTDIR, not ELOOP.
		var st unix.Stat_t
		if unix.Fstatat(int(dir.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil, symlinkErr(filepath.Join(dir.Name(), name), unix.ELOOP)
		}
	}
	return d, err
}

// fstat returns f's stat buffer.
func fstat(f *os.File) (*unix.Stat_t, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(int(f.Fd()), &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "stat", Path: f.Name(), Err: err}
		}
		return &st, nil
	}
}

// syncDir fsyncs the directory d (an O_PATH descriptor cannot be fsync'ed
// itself), making renames and creations in it durable.
func syncDir(d *os.File) error {
	fd, err := openat2Retry(int(d.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: d.Name(), Err: err}
	}
	err = unix.Fsync(fd)
	_ = unix.Close(fd)
	if err != nil {
		return &os.PathError{Op: "fsync", Path: d.Name(), Err: err}
	}
	return nil
}

// renameAt renames oldName to newName, both in dir (renameat(2): neither
// name's symbolic link is followed).
func renameAt(dir *os.File, oldName, newName string) error {
	fd := int(dir.Fd())
	if err := unix.Renameat(fd, oldName, fd, newName); err != nil {
		return &os.LinkError{Op: "rename", Old: filepath.Join(dir.Name(), oldName), New: filepath.Join(dir.Name(), newName), Err: err}
	}
	return nil
}

// unlinkAt removes the non-directory name from dir.
func unlinkAt(dir *os.File, name string) error {
	if err := unix.Unlinkat(int(dir.Fd()), name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	return nil
}

// mkdirAt creates the directory name in dir with mode 0700, set exactly
// whatever the umask. An existing entry is fs.ErrExist.
func mkdirAt(dir *os.File, name string) error {
	if err := unix.Mkdirat(int(dir.Fd()), name, 0o700); err != nil {
		return &os.PathError{Op: "mkdir", Path: filepath.Join(dir.Name(), name), Err: err}
	}
	// fchmod needs a real descriptor (not O_PATH); the directory is ours
	// and new, so reading it is allowed.
	d, err := openAt(int(dir.Fd()), dir.Name(), name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chmod(0o700)
}
