package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/boxsup/boxsup/messages"
)

// MaxSocketPathLen is the longest Unix socket path that can be bound on
// Linux: sun_path is 108 bytes and needs a terminating NUL. A longer path
// does not always fail loudly (some programs truncate it), so boxsup never
// tries one.
const MaxSocketPathLen = 107

// fallbackRuntimeBase is used when $XDG_RUNTIME_DIR is unset or unusable.
const fallbackRuntimeBase = "/tmp"

// SocketDir returns the directory in which to bind the sockets that belong in
// realDir, whose longest name is longestName. That is realDir itself when
// realDir/longestName fits in sun_path. Otherwise it is a short directory
// BASE/boxsup-UID/HASH, where BASE is $XDG_RUNTIME_DIR (else /tmp) and HASH
// the first 16 hex digits of sha256(realDir), so the same realDir always maps
// to the same short directory. The short directory is created with mode 0700
// and reused.
//
// The boxsup-UID parent is refused unless it is a real directory (not a
// symbolic link) owned by this user with mode 0700: in a shared /tmp another
// user could have created it first to capture the sockets.
func SocketDir(realDir, longestName string) (string, error) {
	if !filepath.IsAbs(realDir) {
		return "", messages.Errorf(messages.ErrInternal, "socket directory %q: must be an absolute path", realDir)
	}
	realDir = filepath.Clean(realDir)
	if fits(realDir, longestName) {
		return realDir, nil
	}
	var dir string
	for _, base := range runtimeBases() {
		if d := shortSocketDir(base, realDir); fits(d, longestName) {
			dir = d
			break
		}
	}
	if dir == "" {
		return "", messages.Errorf(messages.ErrInternal,
			"socket name %q: too long for a Unix socket path even in a short directory", longestName)
	}
	parent := filepath.Dir(dir)
	if err := mkdirOwn(parent); err != nil {
		return "", err
	}
	if err := checkPrivateDir(parent); err != nil {
		return "", err
	}
	if err := mkdirOwn(dir); err != nil {
		return "", err
	}
	// The parent is ours and 0700, so nobody else can have put anything here;
	// check anyway rather than trust it.
	if err := checkPrivateDir(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// RemoveSocketDir deletes the short directories SocketDir may have created for
// realDir (under $XDG_RUNTIME_DIR and under /tmp), with whatever sockets they
// hold. Parents that fail SocketDir's checks are left alone. A short directory
// that does not exist is not an error.
func RemoveSocketDir(realDir string) error {
	if !filepath.IsAbs(realDir) {
		return messages.Errorf(messages.ErrInternal, "socket directory %q: must be an absolute path", realDir)
	}
	realDir = filepath.Clean(realDir)
	var errs []error
	for _, base := range runtimeBases() {
		dir := shortSocketDir(base, realDir)
		if checkPrivateDir(filepath.Dir(dir)) != nil {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fits reports whether dir/name can be bound as a Unix socket.
func fits(dir, name string) bool {
	return len(dir)+1+len(name) <= MaxSocketPathLen
}

// runtimeBases lists the candidate bases for short directories, best first:
// $XDG_RUNTIME_DIR when it is an absolute path to a directory, then /tmp.
func runtimeBases() []string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) && x != fallbackRuntimeBase {
		if fi, err := os.Stat(x); err == nil && fi.IsDir() {
			return []string{filepath.Clean(x), fallbackRuntimeBase}
		}
	}
	return []string{fallbackRuntimeBase}
}

// shortSocketDir returns base/boxsup-UID/HASH16(realDir).
func shortSocketDir(base, realDir string) string {
	sum := sha256.Sum256([]byte(realDir))
	return filepath.Join(base, "boxsup-"+strconv.Itoa(os.Getuid()), hex.EncodeToString(sum[:8]))
}

// mkdirOwn creates dir with mode 0700 (set exactly, whatever the umask) if it
// does not exist. An existing entry is left for checkPrivateDir to judge.
func mkdirOwn(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	return nil
}

// checkPrivateDir accepts dir only when it is a real directory, not a
// symbolic link, owned by this process's uid, with mode exactly 0700.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check socket directory: %w", err)
	}
	uid := os.Getuid()
	switch st, ok := fi.Sys().(*syscall.Stat_t); {
	case fi.Mode()&fs.ModeSymlink != 0:
		return messages.Errorf(messages.ErrInternal, "socket directory %s: is a symbolic link; refusing it", dir)
	case !fi.IsDir():
		return messages.Errorf(messages.ErrInternal, "socket directory %s: is not a directory; refusing it", dir)
	case !ok:
		return messages.Errorf(messages.ErrInternal, "socket directory %s: cannot read its owner", dir)
	case int(st.Uid) != uid:
		return messages.Errorf(messages.ErrInternal,
			"socket directory %s: owned by uid %d, not %d; refusing a directory another user controls", dir, st.Uid, uid)
	case fi.Mode().Perm() != 0o700:
		return messages.Errorf(messages.ErrInternal,
			"socket directory %s: mode %04o, want 0700; refusing a directory others can enter", dir, fi.Mode().Perm())
	}
	return nil
}
