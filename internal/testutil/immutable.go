package testutil

import (
	"golang.org/x/sys/unix"
)

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h (chattr +i), which
// golang.org/x/sys/unix does not name.
const fsImmutableFL = 0x10

// SetImmutable sets or clears the immutable attribute of path (chattr +i /
// -i). While it is set nobody, root included, may unlink the file, which
// makes a deletion fail for real. It needs CAP_LINUX_IMMUTABLE and a file
// system that has the attribute (ext4, xfs, btrfs; not tmpfs or overlayfs);
// a test that cannot set it should skip.
func SetImmutable(path string, on bool) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// The kernel reads and writes an int, whatever the ioctl's name says.
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags))
}
