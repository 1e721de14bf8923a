package layout

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// logFileMode is the mode a log file is created with: a guest may print its
// secrets.
const logFileMode = 0o600

// OpenShimLog opens the box's shim.log for appending (created 0600), to be
// the shim's stdout and stderr. Like every file in a box directory it is
// opened without following a symbolic link, and it must be a regular file
// with a single link, owned by this user or root and not writable by group
// or others (messages.ErrUnsafeHome otherwise): boxsup never appends to a
// file someone planted there.
func (b Box) OpenShimLog() (*os.File, error) {
	dir, err := b.openDir()
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return openAppendAt(dir, shimLogFileName, logFileMode)
}

// OpenConsoleLog opens the box's console.log for reading, with OpenShimLog's
// checks. A missing log satisfies errors.Is(err, fs.ErrNotExist).
func (b Box) OpenConsoleLog() (*os.File, error) {
	dir, err := b.openDir()
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return openReadAt(dir, consoleFileName)
}

// OpenAppend opens path for appending, creating it with mode perm, the way
// OpenShimLog does: the last element is never followed when it is a
// symbolic link, and it must be a regular file with one link, owned by this
// user or root and not writable by group or others. It is for a shim, which
// knows its console and log files only by the paths in its spec; the
// directory part of path is trusted as given.
func OpenAppend(path string, perm os.FileMode) (*os.File, error) {
	dir, err := openDirPath(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return openAppendAt(dir, filepath.Base(path), perm)
}

// OpenRead opens path for reading with OpenAppend's checks (a symbolic link
// or a file another user controls is refused).
func OpenRead(path string) (*os.File, error) {
	dir, err := openDirPath(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return openReadAt(dir, filepath.Base(path))
}

func openAppendAt(dir *os.File, name string, perm os.FileMode) (*os.File, error) {
	f, err := openAt(int(dir.Fd()), dir.Name(), name,
		unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NONBLOCK, uint32(perm.Perm()))
	if err != nil {
		return nil, err
	}
	if err := checkWritable(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func openReadAt(dir *os.File, name string) (*os.File, error) {
	f, err := openAt(int(dir.Fd()), dir.Name(), name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := checkFile(f, sharedFile); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkWritable checks a file boxsup writes in place: sharedFile's rule,
// and a single link, so that a hard link to another file is never
// appended to or truncated.
func checkWritable(f *os.File) error {
	st, err := fstat(f)
	if err != nil {
		return err
	}
	if err := checkFileStat(f.Name(), st, sharedFile); err != nil {
		return err
	}
	if st.Nlink != 1 {
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s has %d hard links: boxsup writes only to a file of its own; fix: remove it", f.Name(), st.Nlink)
	}
	return nil
}
