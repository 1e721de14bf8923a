package shimproc

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// A shim binary is trusted the way the home is (layout's rules): a shim
// reads every secret of its box on stdin and runs with the supervisor's
// uid, so a binary another user can change, or put in its place, hands
// that user the secrets and the supervisor's privileges. Before a shim
// binary is run (a box's spawn, `SHIM --capabilities`), its path is
// resolved one name at a time and
//
//   - every directory met, from / down to the binary's, must be owned by
//     this process's effective uid or root, and writable by group or others
//     only with the sticky bit (/tmp): otherwise its owner, or anybody, could
//     rename another program into the binary's place;
//   - every symbolic link met must be owned by this uid or root (who owns a
//     link decides where it points);
//   - the binary must be a regular file owned by this uid or root, not
//     writable by group or others, and executable.
//
// Nothing is changed to make a check pass. The refusal is
// messages.ErrShimNotFound, not ErrUnsafeHome: the home is fine, it is the
// binary that cannot be used, and every caller already treats "no usable
// shim" as that code (Start's documented errors, FindShim's PATH search
// that skips such a binary and goes on, `boxsup info`).
//
// The check is made at every use, never cached, and returns the binary's
// path with every link resolved: callers exec that path, so that no link is
// followed again. What remains is the window between the check and the
// exec, which opens the file by its path once more: a change made in that
// window is not seen. Along a path that passed, only this uid or root can
// make one (an upgrade replacing the binary), with one exception: in a
// sticky directory any user may create a name that does not exist, so a
// binary its owner removes from /tmp in that window can be replaced by
// another user's (keep shims out of sticky directories). Executing the
// descriptor that was checked (execveat with AT_EMPTY_PATH) would close the
// window, but os/exec cannot, and a script shim's interpreter would be
// handed a /dev/fd path that close-on-exec has already closed. What the
// binary itself loads (a script's #! interpreter, shared libraries) is not
// checked: that is the system's.

// maxShimLinks bounds the symbolic links followed, as the kernel's ELOOP
// does.
const maxShimLinks = 40

// CheckShimBinary checks that the shim binary at path can be trusted with
// its boxes' secrets (see above) and returns its absolute path with every
// symbolic link resolved, which is the path to run. A relative path is
// taken from the working directory. A missing binary is
// messages.ErrShimNotFound "box runner binary not found: PATH"; a failed
// check is messages.ErrShimNotFound naming the path, the owner or mode at
// fault and the fix.
func CheckShimBinary(path string) (string, error) {
	real, _, err := checkShimBinary(path)
	return real, err
}

// checkShimBinary is CheckShimBinary, also returning the binary's lstat
// from the check: the identity the capabilities cache keys its answer by
// is the one that was checked.
func checkShimBinary(path string) (string, *unix.Stat_t, error) {
	if path == "" {
		return "", nil, messages.Errorf(messages.ErrShimNotFound, "no path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, messages.Errorf(messages.ErrShimNotFound, "%s (%v)", path, err)
	}
	w := shimWalk{given: path}
	real, st, err := w.resolve(abs)
	if err != nil {
		return "", nil, err
	}
	if err := w.checkBinary(real, st); err != nil {
		return "", nil, err
	}
	return real, st, nil
}

// shimWalk resolves a shim's path one name at a time, checking everything
// it meets.
type shimWalk struct {
	given string // the path as the caller named it, for messages
	links int
}

// resolve walks abs from /, following symbolic links, and returns the
// final file's real path and lstat. Every directory on the way is checked
// before anything in it is looked at.
func (w *shimWalk) resolve(abs string) (string, *unix.Stat_t, error) {
	var st unix.Stat_t
	if err := w.lstat("/", &st); err != nil {
		return "", nil, err
	}
	if err := w.checkDir("/", &st); err != nil {
		return "", nil, err
	}
	cur := "/" // real, checked; never holds a link
	rest := strings.Split(abs, "/")
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // checked on the way down
			continue
		}
		next := filepath.Join(cur, name)
		if err := w.lstat(next, &st); err != nil {
			return "", nil, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := w.followLink(next, &st)
			if err != nil {
				return "", nil, err
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
		case unix.S_IFDIR:
			if err := w.checkDir(next, &st); err != nil {
				return "", nil, err
			}
			cur = next
		default:
			if more(rest) {
				return "", nil, messages.Errorf(messages.ErrShimNotFound, "%s (%s is not a directory)", w.given, next)
			}
			return next, &st, nil
		}
	}
	return "", nil, messages.Errorf(messages.ErrShimNotFound, "%s (%s is a directory, not an executable file)", w.given, cur)
}

// more reports whether names holds a name still to walk.
func more(names []string) bool {
	for _, n := range names {
		if n != "" && n != "." {
			return true
		}
	}
	return false
}

// lstat is unix.Lstat with its failure as a missing binary.
func (w *shimWalk) lstat(path string, st *unix.Stat_t) error {
	err := unix.Lstat(path, st)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		// The bare path, as before the trust checks: "box runner binary
		// not found: /usr/bin/boxsup-shim".
		return messages.Errorf(messages.ErrShimNotFound, "%s", w.given)
	}
	return messages.Errorf(messages.ErrShimNotFound, "%s (%w)", w.given, &os.PathError{Op: "lstat", Path: path, Err: err})
}

// followLink checks the symbolic link at path (lstat st) and returns its
// target.
func (w *shimWalk) followLink(path string, st *unix.Stat_t) (string, error) {
	if !layout.TrustedUID(st.Uid) {
		return "", w.refuse("the symbolic link %s is owned by uid %d, not by uid %d or root, and that user could point it at another program; fix: give the shim's real path, or replace the link with one of your own",
			path, st.Uid, os.Geteuid())
	}
	if w.links++; w.links > maxShimLinks {
		return "", messages.Errorf(messages.ErrShimNotFound, "%s (more than %d symbolic links)", w.given, maxShimLinks)
	}
	target, err := os.Readlink(path)
	if err != nil {
		return "", messages.Errorf(messages.ErrShimNotFound, "%s (%v)", w.given, err)
	}
	return target, nil
}

// checkDir checks a directory on the way to the binary.
func (w *shimWalk) checkDir(path string, st *unix.Stat_t) error {
	switch {
	case !layout.TrustedUID(st.Uid):
		return w.refuse("the directory %s is owned by uid %d, not by uid %d or root, and that user could put another program in the shim's place; fix: install the shim where only you or root can write",
			path, st.Uid, os.Geteuid())
	case layout.ReplaceableByOthers(st.Mode):
		return w.refuse("the directory %s has mode %04o: group or others may write it without the sticky bit and put another program in the shim's place; fix: chmod go-w %s, or install the shim elsewhere",
			path, st.Mode&0o7777, path)
	}
	return nil
}

// checkBinary checks the binary itself (real path, lstat st).
func (w *shimWalk) checkBinary(path string, st *unix.Stat_t) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return messages.Errorf(messages.ErrShimNotFound, "%s (not an executable file)", w.name(path))
	case !layout.TrustedUID(st.Uid):
		return w.refuse("%s is owned by uid %d, not by uid %d or root; fix: chown %d %s if you trust its content, or install the shim elsewhere",
			path, st.Uid, os.Geteuid(), os.Geteuid(), path)
	case layout.WritableByOthers(st.Mode):
		return w.refuse("%s has mode %04o: group or others may write it and change the program; fix: chmod go-w %s if you trust its content",
			path, st.Mode&0o7777, path)
	case unix.Access(path, unix.X_OK) != nil:
		return messages.Errorf(messages.ErrShimNotFound, "%s (not an executable file)", w.name(path))
	}
	return nil
}

// refuse is a failed trust check: ErrShimNotFound naming the path given,
// why a shim must be trusted, what is at fault and the fix.
func (w *shimWalk) refuse(format string, args ...any) error {
	return messages.Errorf(messages.ErrShimNotFound,
		"refusing the shim %s, which would get every secret of its boxes and run as uid %d: "+format,
		append([]any{w.given, os.Geteuid()}, args...)...)
}

// name is the path given, with the real path when they differ.
func (w *shimWalk) name(real string) string {
	if abs, err := filepath.Abs(w.given); err == nil && abs == real {
		return w.given
	}
	return w.given + " (" + real + ")"
}
