package layout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// WriteJSON replaces path with v encoded as JSON, atomically and durably: it
// writes a temporary file in the same directory (created exclusively with
// mode perm, set exactly whatever the umask; 0 means 0600), fsyncs it,
// renames it over path and fsyncs the directory. A crash leaves either the old
// or the new file, never half of one, and on any error the temporary file is
// removed and path is untouched.
func WriteJSON(path string, v any, perm os.FileMode) error {
	return writeJSON(path, v, perm, true)
}

// WriteJSONVolatile replaces path with v encoded as JSON atomically but
// without fsync: a crash of the writing process still leaves the old or the
// new file (the rename is atomic and the page cache survives the process),
// but a power loss may lose the update. It is for records that describe
// running processes (state.json, exit.json): after a power loss every such
// process is gone and the boot id has changed, so reconcile reports them dead
// whatever the file says, and the two fsyncs (about 0.4 ms here) stay off the
// start and stop paths.
func WriteJSONVolatile(path string, v any, perm os.FileMode) error {
	return writeJSON(path, v, perm, false)
}

func writeJSON(path string, v any, perm os.FileMode, durable bool) error {
	dirPath, base := filepath.Split(path)
	if dirPath == "" {
		dirPath = "."
	}
	dir, err := openDirPath(dirPath)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	defer dir.Close()
	return writeJSONAt(dir, base, v, perm, durable)
}

// writeJSONAt is WriteJSON for the file name (one path element) in the open
// directory dir. The temporary file is created exclusively (O_EXCL never
// follows a link) and the rename replaces whatever name is, never
// following it.
func writeJSONAt(dir *os.File, name string, v any, perm os.FileMode, durable bool) error {
	path := filepath.Join(dir.Name(), name)
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: encode: %w", path, err)
	}
	data = append(data, '\n')
	perm &= os.ModePerm
	if perm == 0 {
		perm = 0o600
	}
	tmp := "." + name + ".tmp-" + randomHex(6)
	f, err := openAt(int(dir.Fd()), dir.Name(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, uint32(perm))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeClose(f, data, perm, durable); err != nil {
		_ = unlinkAt(dir, tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	replace := renameAt
	if !durable {
		replace = exchangeInto
	}
	if err := replace(dir, tmp, name); err != nil {
		_ = unlinkAt(dir, tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeClose sets the mode, writes data, fsyncs (when durable) and closes
// f, closing it on every path.
func writeClose(f *os.File, data []byte, perm os.FileMode, durable bool) error {
	err := f.Chmod(perm) // the open mode was filtered by the umask
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// syncDirPath fsyncs the directory at path.
func syncDirPath(path string) error {
	d, err := openDirPath(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return syncDir(d)
}

// maxRecordBytes bounds a JSON record read from the home: a planted
// multi-gigabyte file must not exhaust memory. A start request is at most
// 4 MiB on the control socket; records are far smaller.
const maxRecordBytes = 16 << 20

// ReadJSON decodes the JSON file at path into v. The last path element is
// never followed when it is a symbolic link (messages.ErrUnsafeHome), and
// anything but a regular file is refused. A missing file gives an error
// that satisfies errors.Is(err, fs.ErrNotExist); an empty, truncated, over
// 16 MiB or otherwise invalid file gives messages.ErrCorruptFile naming the
// path. The file is never modified.
func ReadJSON(path string, v any) error {
	dirPath, base := filepath.Split(path)
	if dirPath == "" {
		dirPath = "."
	}
	dir, err := openDirPath(dirPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer dir.Close()
	return readJSONAt(dir, base, v, nil)
}

// readJSONAt is ReadJSON for name in dir; a non-nil rule is also checked
// (owner and mode) before the content is read.
func readJSONAt(dir *os.File, name string, v any, rule *fileRule) error {
	path := filepath.Join(dir.Name(), name)
	// O_NONBLOCK: a FIFO planted under the name must not block the open.
	f, err := openAt(int(dir.Fd()), dir.Name(), name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		var me *messages.Error
		if errors.As(err, &me) {
			return err
		}
		return fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	st, err := fstat(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	if rule != nil {
		if err := checkFileStat(path, st, *rule); err != nil {
			return err
		}
	} else if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return messages.Errorf(messages.ErrCorruptFile, "%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRecordBytes+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	switch {
	case len(data) == 0:
		return messages.Errorf(messages.ErrCorruptFile, "%s: empty file", path)
	case len(data) > maxRecordBytes:
		return messages.Errorf(messages.ErrCorruptFile, "%s: larger than %d bytes", path, maxRecordBytes)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return messages.Errorf(messages.ErrCorruptFile, "%s: %v", path, err)
	}
	return nil
}

// unwrapPath strips the *fs.PathError wrapper (whose text repeats the path we
// already name) while keeping the errno for errors.Is.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// exchangeInto moves tmp over path like rename(2), but when path exists it
// swaps the two names atomically (renameat2 RENAME_EXCHANGE) and unlinks the
// old content under the temporary name. Readers see the old or the new file
// either way. The point is speed: ext4 (auto_da_alloc) starts writing back
// the new file's data when a rename replaces an existing file, which made a
// volatile state.json write cost ~190 µs here instead of ~40 µs. A crash
// between the swap and the unlink leaves a hidden temporary file holding the
// previous record, nothing worse. Filesystems without RENAME_EXCHANGE get a
// plain rename.
func exchangeInto(dir *os.File, tmp, name string) error {
	fd := int(dir.Fd())
	err := unix.Renameat2(fd, tmp, fd, name, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		_ = unlinkAt(dir, tmp) // now the previous content
		return nil
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return renameAt(dir, tmp, name) // first write, or no RENAME_EXCHANGE here
	default:
		return &os.LinkError{Op: "renameat2", Old: filepath.Join(dir.Name(), tmp), New: filepath.Join(dir.Name(), name), Err: err}
	}
}
