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
	"strings"
	"syscall"

	"github.com/boxsup/boxsup/messages"
)

// MaxSocketPathLen is the longest Unix socket path that can be bound on
// Linux: sun_path is 108 bytes and needs a terminating NUL. A longer path
// does not always fail loudly (some programs truncate it), so boxsup never
// tries one.
const MaxSocketPathLen = 107

// SocketDir returns the directory in which to bind the sockets that belong in
// realDir, whose longest name is longestName. That is realDir itself when
// realDir/longestName fits in sun_path. Otherwise it is a short directory
// BASE/boxsup-UID/HASH, where HASH is the first 16 hex digits of
// sha256(realDir), so the same realDir always maps to the same short
// directory. The short directory is created with mode 0700 and reused.
//
// BASE is the first candidate of runtimeBases whose short directory fits:
// $XDG_RUNTIME_DIR when it is private to this user; then /run for root, or
// /run/user/UID for another user, where nobody else may create entries;
// then /tmp. A candidate whose boxsup-UID parent is not a real directory
// (not a symbolic link) owned by this user with mode 0700 is passed over
// for the next: in a shared /tmp another user could have created it first,
// to capture the sockets or merely to make every command fail. Nothing
// found there is chmod'ed or removed. Only when every candidate is refused
// is the error messages.ErrUnsafeHome, naming the refused directories, their
// owners and the fix.
//
// The server that binds a socket and every client that connects to it
// call SocketDir on their own, so they must choose alike: the choice
// depends only on the environment and on what is on disk, and nobody but
// this user and root can change what decides it, since only /tmp, the last
// candidate, may hold others' entries.
func SocketDir(realDir, longestName string) (string, error) {
	if !filepath.IsAbs(realDir) {
		return "", messages.Errorf(messages.ErrInternal, "socket directory %q: must be an absolute path", realDir)
	}
	realDir = filepath.Clean(realDir)
	if fits(realDir, longestName) {
		return realDir, nil
	}
	return shortDir(currentBases(), realDir, longestName)
}

// shortDir is SocketDir's choice among bases for a realDir that does not
// fit: the first base whose short directory fits and whose boxsup-UID
// parent is ours and private.
func shortDir(bases []string, realDir, longestName string) (string, error) {
	var refused, squatted []string
	fitting := false
	for _, base := range bases {
		dir := shortSocketDir(base, realDir)
		if !fits(dir, longestName) {
			continue
		}
		fitting = true
		parent := filepath.Dir(dir)
		if err := mkdirOwn(parent); err != nil {
			return "", err
		}
		why, err := privateDirProblem(parent)
		if err != nil {
			return "", err
		}
		if why != "" {
			refused = append(refused, parent+" "+why)
			squatted = append(squatted, parent)
			continue
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
	if !fitting {
		return "", messages.Errorf(messages.ErrInternal,
			"socket name %q: too long for a Unix socket path even in a short directory", longestName)
	}
	return "", messages.Errorf(messages.ErrUnsafeHome,
		"the sockets of %s need a short directory (the path is too long for a socket address), and every candidate is refused: %s; fix: remove %s (boxsup never changes it), set XDG_RUNTIME_DIR to a directory only you can write, or use a shorter home path",
		realDir, strings.Join(refused, "; "), strings.Join(squatted, " and "))
}

// RemoveSocketDir deletes the short directories SocketDir may have created for
// realDir (under every candidate base), with whatever sockets they hold.
// Parents that fail SocketDir's checks are left alone. A short directory
// that does not exist is not an error.
func RemoveSocketDir(realDir string) error {
	if !filepath.IsAbs(realDir) {
		return messages.Errorf(messages.ErrInternal, "socket directory %q: must be an absolute path", realDir)
	}
	realDir = filepath.Clean(realDir)
	return removeShortDirs(currentBases(), realDir)
}

// removeShortDirs is RemoveSocketDir over bases.
func removeShortDirs(bases []string, realDir string) error {
	var errs []error
	for _, base := range bases {
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
	why, err := privateDirProblem(dir)
	if err != nil {
		return err
	}
	if why != "" {
		return messages.Errorf(messages.ErrUnsafeHome,
			"socket directory %s %s, so it is refused; fix: remove it", dir, why)
	}
	return nil
}

// privateDirProblem says why dir fails checkPrivateDir ("is owned by uid
// 1001, not 0"), or "" when it passes.
func privateDirProblem(dir string) (string, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("check socket directory: %w", err)
	}
	uid := os.Getuid()
	switch st, ok := fi.Sys().(*syscall.Stat_t); {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "is a symbolic link", nil
	case !fi.IsDir():
		return "is not a directory", nil
	case !ok:
		return "has no owner boxsup can read", nil
	case int(st.Uid) != uid:
		return fmt.Sprintf("is owned by uid %d, not %d", st.Uid, uid), nil
	case fi.Mode().Perm() != 0o700:
		return fmt.Sprintf("has mode %04o, not 0700", fi.Mode().Perm()), nil
	}
	return "", nil
}
