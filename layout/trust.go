package layout

import (
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// The home is checked before use the way OpenSSH checks ~/.ssh: everything
// boxsup reads from it decides which processes it signals and which
// commands it runs, so nothing in it may be controlled by another user.
//
//   - The home, boxes/ and every box directory must be directories owned by
//     this process's effective uid or by root, and not writable by group or
//     others.
//   - Every ancestor of the home must be owned by this uid or root, and may
//     be writable by others only with the sticky bit set (/tmp): otherwise
//     its owner could rename the home away and put another in its place.
//     Missing ancestors are created only inside ones that passed.
//   - Every symbolic link on the way to the home (see Canonical) must be
//     owned by this uid or root, and the directories above it must pass the
//     ancestor rule: the link decides where the home is, so whoever owns it,
//     or can replace it, could otherwise point boxsup at any directory.
//   - spec.json and state.json must be regular files owned by this uid or
//     root, with no permission bits for group or others (spec.json holds
//     secrets; both are written 0600); exit.json and the logs must not be
//     writable by group or others.
//
// A failed check is messages.ErrUnsafeHome naming the path and the fix.
// Nothing is changed to make a check pass: a directory boxsup did not create
// is never chmod'ed or chown'ed behind the user's back.

// The three rules below are exported for the other files boxsup trusts the
// same way though they lie outside the home (the shim binary, which gets
// every secret of its boxes: shimproc.CheckShimBinary), so that there is one
// definition of "controlled by nobody else".

// TrustedUID reports whether uid may own what boxsup acts on: this process's
// effective uid, or root.
func TrustedUID(uid uint32) bool { return uid == 0 || uid == uint32(os.Geteuid()) }

// WritableByOthers reports whether a file or directory of mode mode (a
// st_mode) may be written by its group or by others.
func WritableByOthers(mode uint32) bool { return mode&0o022 != 0 }

// ReplaceableByOthers reports whether users other than the owner of a
// directory of mode mode may rename or remove its entries, and so put
// another file under a name it holds: it is writable by group or others
// without the sticky bit (a sticky /tmp lets each user touch only their
// own entries).
func ReplaceableByOthers(mode uint32) bool { return WritableByOthers(mode) && mode&unix.S_ISVTX == 0 }

// ownerFix is the advice for a path owned by someone else.
func ownerFix(path string) string {
	return "fix: chown " + strconv.Itoa(os.Geteuid()) + " " + path + ", or choose another home (--home or BOXSUP_HOME)"
}

// checkHomeDir checks one directory of the home (the root, boxes/, a box
// directory): a real directory, owned by a trusted uid, not writable by
// group or others. st comes from fstat on an open descriptor, or lstat.
func checkHomeDir(path string, st *unix.Stat_t) error {
	mode := st.Mode
	switch {
	case mode&unix.S_IFMT == unix.S_IFLNK:
		return messages.Errorf(messages.ErrUnsafeHome, "%s is a symbolic link; fix: give the real directory as the home", path)
	case mode&unix.S_IFMT != unix.S_IFDIR:
		return messages.Errorf(messages.ErrUnsafeHome, "%s is not a directory; fix: remove it, or choose another home (--home or BOXSUP_HOME)", path)
	case !TrustedUID(st.Uid):
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s is owned by uid %d, not by uid %d or root, so that user could plant the files boxsup acts on; %s",
			path, st.Uid, os.Geteuid(), ownerFix(path))
	case WritableByOthers(mode):
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s has mode %04o: group or others may write it and plant the files boxsup acts on; fix: chmod go-w %s",
			path, mode&0o7777, path)
	}
	return nil
}

// checkAncestor checks a directory above the home: owned by a trusted uid,
// and writable by group or others only when sticky.
func checkAncestor(path string, st *unix.Stat_t) error {
	return checkDirAbove(path, st, "the home")
}

// checkDirAbove applies checkAncestor's rule to a directory above what
// ("the home", "the symbolic link /tmp/x"), naming it in the message: its
// owner, and anyone who may write it without the sticky bit, could rename
// what away and put something else in its place.
func checkDirAbove(path string, st *unix.Stat_t, what string) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return messages.Errorf(messages.ErrUnsafeHome, "%s (above %s) is not a directory", path, what)
	case !TrustedUID(st.Uid):
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s (above %s) is owned by uid %d, not by uid %d or root, so that user could replace %s; fix: put the home elsewhere (--home or BOXSUP_HOME)",
			path, what, st.Uid, os.Geteuid(), what)
	case ReplaceableByOthers(st.Mode):
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s (above %s) has mode %04o: others may write it without the sticky bit and replace %s; fix: chmod go-w %s, or put the home elsewhere",
			path, what, st.Mode&0o7777, what, path)
	}
	return nil
}

// checkDirsAbove applies checkDirAbove to every directory from path's
// parent up to /. Those directories must hold no symbolic link (path comes
// from Canonical's walk, which has resolved them).
func checkDirsAbove(path, what string) error {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		if err := checkDirAbove(p, &st, what); err != nil {
			return err
		}
		if p == "/" {
			return nil
		}
	}
}

// fileRule is what a file under a box directory must satisfy.
type fileRule struct {
	forbidden uint32 // permission bits that must be clear
	what      string // "holds secrets", for the message
}

var (
	// privateFile: spec.json (secrets) and state.json.
	privateFile = fileRule{forbidden: 0o077, what: "group or others may read or write it"}
	// sharedFile: exit.json (0644, written by the shim) and the logs.
	sharedFile = fileRule{forbidden: 0o022, what: "group or others may write it"}
)

// checkFile checks an open file: regular, owned by a trusted uid, none of
// rule's forbidden bits set.
func checkFile(f *os.File, rule fileRule) error {
	st, err := fstat(f)
	if err != nil {
		return err
	}
	return checkFileStat(f.Name(), st, rule)
}

func checkFileStat(path string, st *unix.Stat_t, rule fileRule) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return messages.Errorf(messages.ErrUnsafeHome, "%s is not a regular file; fix: remove it", path)
	case !TrustedUID(st.Uid):
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s is owned by uid %d, not by uid %d or root: boxsup does not act on a file another user wrote; fix: remove it (or chown %d it, if you wrote it)",
			path, st.Uid, os.Geteuid(), os.Geteuid())
	case st.Mode&rule.forbidden != 0:
		return messages.Errorf(messages.ErrUnsafeHome,
			"%s has mode %04o: %s; fix: chmod %04o %s, if its content is yours",
			path, st.Mode&0o7777, rule.what, st.Mode&0o777&^rule.forbidden, path)
	}
	return nil
}
