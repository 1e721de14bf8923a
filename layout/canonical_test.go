package layout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// stickyDir returns a new directory with mode 1777, as /tmp: anyone may
// create entries in it, and only their owner may remove or rename them.
func stickyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// symlink creates link pointing at target, owned by uid (-1: this user).
func symlink(t *testing.T, target, link string, uid int) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Lchown(link, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

// assertEmpty fails unless dir exists and holds nothing.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("%s holds %v, want nothing", dir, names)
	}
}

// TestOpenRefusesALinkOfAnotherUser: another user's link in a sticky
// directory (ln -s /root/dir /tmp/evil) must not lead Open to act on the
// directory it points at, whether the link is the home itself or a
// directory above it.
func TestOpenRefusesALinkOfAnotherUser(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	tmp := stickyDir(t)
	target := t.TempDir() // root's own directory, perfectly trusted
	evil := filepath.Join(tmp, "evil")
	symlink(t, target, evil, nobodyUID)

	for _, home := range []string{evil, filepath.Join(evil, "home"), filepath.Join(evil, "a", "b", "home")} {
		_, err := Open(home)
		wantUnsafe(t, "Open("+home+")", err, evil)
		wantUnsafe(t, "Open("+home+")", err, "uid 65534")
		if _, err := Canonical(home); !errors.Is(err, messages.ErrUnsafeHome) {
			t.Errorf("Canonical(%s) = %v, want ErrUnsafeHome", home, err)
		}
	}
	assertEmpty(t, target)
}

// TestOpenRefusesALinkInAChainOfLinks: a trusted link that leads to
// another user's link is refused all the same.
func TestOpenRefusesALinkInAChainOfLinks(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	tmp := stickyDir(t)
	target := t.TempDir()
	theirs := filepath.Join(tmp, "theirs")
	symlink(t, target, theirs, nobodyUID)
	ours := filepath.Join(t.TempDir(), "ours")
	rel, err := filepath.Rel(filepath.Dir(ours), theirs)
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, rel, ours, -1) // relative: resolved against ours' directory
	if got, err := filepath.EvalSymlinks(ours); err != nil || got != target {
		t.Fatalf("test setup: %s resolves to %q, %v; want %s", ours, got, err, target)
	}
	_, err = Open(filepath.Join(ours, "home"))
	wantUnsafe(t, "a chain through another user's link", err, theirs)
	assertEmpty(t, target)
}

// TestOpenRefusesALinkOthersCanReplace: a link of our own in a directory
// that another user may write (or that one above it is) can be swapped for
// another between two commands, so it is refused; in a sticky directory
// nobody else can rename it, so it is followed.
func TestOpenRefusesALinkOthersCanReplace(t *testing.T) {
	t.Parallel()
	target := t.TempDir()

	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil { // no sticky bit
		t.Fatal(err)
	}
	link := filepath.Join(open, "link")
	symlink(t, target, link, -1)
	_, err := Open(link)
	wantUnsafe(t, "a link in a world-writable directory", err, open)
	wantUnsafe(t, "a link in a world-writable directory", err, link)
	assertEmpty(t, target)

	// The same link one level down: the directory holding it is fine, the
	// one above it is not.
	deeper := filepath.Join(open, "sub")
	mustMkdir(t, deeper)
	deepLink := filepath.Join(deeper, "link")
	symlink(t, target, deepLink, -1)
	_, err = Open(filepath.Join(deepLink, "home"))
	wantUnsafe(t, "a link below a world-writable directory", err, open)
	assertEmpty(t, target)

	if err := syscall.Chmod(open, 0o1777); err != nil {
		t.Fatal(err)
	}
	h, err := Open(link)
	if err != nil {
		t.Fatalf("our own link in a sticky directory: %v", err)
	}
	if h.Root != target {
		t.Errorf("Root = %s, want %s", h.Root, target)
	}
}

// TestOpenRefusesALinkInADirectoryOfAnotherUser: the directory holding a
// link belongs to another user, who can replace the link at will.
func TestOpenRefusesALinkInADirectoryOfAnotherUser(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	target := t.TempDir()
	theirs := filepath.Join(t.TempDir(), "theirs")
	mustMkdir(t, theirs)
	if err := os.Chmod(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(theirs, "link")
	symlink(t, target, link, -1)
	if err := os.Chown(theirs, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	_, err := Open(link)
	wantUnsafe(t, "a link in a directory of nobody", err, theirs)
	wantUnsafe(t, "a link in a directory of nobody", err, "uid 65534")
	assertEmpty(t, target)
}

// TestCanonicalResolvesTrustedLinks: links of our own, with absolute and
// relative targets, chained, dangling or followed by a missing tail, give
// the path the kernel would reach.
func TestCanonicalResolvesTrustedLinks(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	mustMkdir(t, real)
	mustMkdir(t, filepath.Join(real, "in"))
	symlink(t, real, filepath.Join(tmp, "abs"), -1)
	symlink(t, "real/in", filepath.Join(tmp, "rel"), -1)
	symlink(t, "../abs/in", filepath.Join(real, "up"), -1)
	symlink(t, "rel", filepath.Join(tmp, "chain"), -1)
	symlink(t, ".", filepath.Join(tmp, "self"), -1)

	for in, want := range map[string]string{
		real:                                    real,
		tmp + "/abs":                            real,
		tmp + "/abs/in":                         real + "/in",
		tmp + "/rel":                            real + "/in",
		tmp + "/rel/../in":                      tmp + "/in", // cleaned first, as before
		tmp + "/abs/up":                         real + "/in",
		tmp + "/chain/missing/home":             real + "/in/missing/home",
		tmp + "/abs/up/missing":                 real + "/in/missing",
		tmp + "/self/self/abs":                  real,
		tmp + "/missing/../abs/in/":             real + "/in",
		filepath.Join(tmp, "missing", "a", "b"): filepath.Join(tmp, "missing", "a", "b"),
	} {
		got, err := Canonical(in)
		if err != nil || got != want {
			t.Errorf("Canonical(%s) = %q, %v; want %s", in, got, err, want)
		}
	}
}

// TestCanonicalRefusesADanglingLink: a link whose target does not exist
// is not a missing tail to create, as for mkdir -p; the error names it.
func TestCanonicalRefusesADanglingLink(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	mustMkdir(t, filepath.Join(tmp, "real"))
	dangling := filepath.Join(tmp, "dangling")
	symlink(t, "nowhere/yet", dangling, -1)
	dotdot := filepath.Join(tmp, "dotdot")
	symlink(t, "gone/../real", dotdot, -1) // the kernel needs gone to exist
	// A link whose target goes through another link, then misses: the
	// first link is the one that names the missing element.
	mustMkdir(t, filepath.Join(tmp, "x"))
	symlink(t, "x", filepath.Join(tmp, "second"), -1)
	first := filepath.Join(tmp, "first")
	symlink(t, "second/missing", first, -1)
	for in, link := range map[string]string{
		dangling:           dangling,
		dangling + "/home": dangling,
		dotdot + "/home":   dotdot,
		first + "/home":    first,
	} {
		got, err := Canonical(in)
		if !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), link) {
			t.Errorf("Canonical(%s) = %q, %v; want ErrBadSpec naming %s", in, got, err, link)
		}
	}
	if _, err := Open(dangling + "/home"); !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("Open through a dangling link: %v, want ErrBadSpec", err)
	}
	if _, err := os.Lstat(filepath.Join(tmp, "nowhere")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open created the dangling link's target: %v", err)
	}
}

// TestCanonicalStopsALinkLoop: links that point at each other end in an
// error, not a hang.
func TestCanonicalStopsALinkLoop(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	symlink(t, "b", filepath.Join(tmp, "a"), -1)
	symlink(t, "a", filepath.Join(tmp, "b"), -1)
	symlink(t, "loop/x", filepath.Join(tmp, "loop"), -1)
	for _, in := range []string{tmp + "/a", tmp + "/a/home", tmp + "/loop"} {
		if got, err := Canonical(in); !errors.Is(err, syscall.ELOOP) {
			t.Errorf("Canonical(%s) = %q, %v; want ELOOP", in, got, err)
		}
	}
}
