package layout

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// runtimeRoots are the fixed places short socket directories may go,
// besides $XDG_RUNTIME_DIR.
type runtimeRoots struct {
	run     string // root's candidate: only root may create entries there
	runUser string // holds each user's runtime directory, runUser/UID
	tmp     string // the last resort: anyone may create entries there
}

// systemRoots are the runtimeRoots of the running system; tests pass
// temporary directories to runtimeBases instead.
var systemRoots = runtimeRoots{run: "/run", runUser: "/run/user", tmp: "/tmp"}

// currentBases is runtimeBases for this process.
func currentBases() []string {
	return runtimeBases(os.Getenv("XDG_RUNTIME_DIR"), os.Getuid(), systemRoots)
}

// runtimeBases lists the candidate bases for the short socket directories
// of uid, best first, each once:
//
//   - for root, roots.run (/run) when it is a real directory owned by root
//     and not writable by group or others; for another user,
//     roots.runUser/UID (/run/user/UID, made by the login manager) when it
//     is a real directory owned by uid with mode 0700;
//   - xdg ($XDG_RUNTIME_DIR), when it is an absolute path to a real
//     directory owned by uid and not writable by group or others (a
//     $XDG_RUNTIME_DIR of another user kept by sudo -E is passed over);
//   - roots.tmp (/tmp), always.
//
// Only the last may hold entries of other users, so a boxsup-UID squatted
// there is met only when nothing better exists, and nobody else can make
// an earlier candidate appear or vanish under a running server: the
// server and its clients, each calling SocketDir, choose alike.
func runtimeBases(xdg string, uid int, roots runtimeRoots) []string {
	var bases []string
	add := func(dir string, ok bool) {
		if ok && !slices.Contains(bases, dir) {
			bases = append(bases, dir)
		}
	}
	// The system's place first: it is the same in every environment of
	// uid, while $XDG_RUNTIME_DIR is set for a login and unset for a
	// systemd unit or cron, and a server and a client that chose by it
	// would miss each other.
	if uid == 0 {
		add(roots.run, privateBase(roots.run, 0))
	} else {
		dir := filepath.Join(roots.runUser, strconv.Itoa(uid))
		var st unix.Stat_t
		add(dir, unix.Lstat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR &&
			int(st.Uid) == uid && st.Mode&0o7777 == 0o700)
	}
	if filepath.IsAbs(xdg) {
		xdg = filepath.Clean(xdg)
		add(xdg, privateBase(xdg, uid))
	}
	add(roots.tmp, true)
	return bases
}

// privateBase reports whether dir is a real directory (not a symbolic link,
// which whoever owns the directory holding it could point elsewhere) that
// uid owns and may write, and that group and others may not write: there
// nobody but uid and root can create, rename or remove entries.
func privateBase(dir string, uid int) bool {
	var st unix.Stat_t
	if unix.Lstat(dir, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false
	}
	return int(st.Uid) == uid && st.Mode&0o022 == 0 && (uid == 0 || st.Mode&0o300 == 0o300)
}
