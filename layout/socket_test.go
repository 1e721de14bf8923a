package layout

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// longName returns a relative path of nested 20-byte elements at least n bytes
// long, to push a directory past the sun_path limit.
func longName(n int) string {
	var parts []string
	for l := 0; l < n; l += 21 {
		parts = append(parts, strings.Repeat("d", 20))
	}
	return filepath.Join(parts...)
}

// longDir creates a directory whose path is longer than any socket path.
func longDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), longName(120))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shortTempDir is t.TempDir with a short path (t.TempDir names it after
// the test), to leave room for a short socket directory and socket name.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func runtimeParent(runtime string) string {
	return filepath.Join(runtime, "boxsup-"+strconv.Itoa(os.Getuid()))
}

func TestSocketDirShortPathIsUsedAsIs(t *testing.T) {
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	real := t.TempDir()
	got, err := SocketDir(real, "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	if got != real {
		t.Errorf("SocketDir = %q, want the real dir %q", got, real)
	}
	if names := dirNames(t, runtime); len(names) != 0 {
		t.Errorf("SocketDir created %v in the runtime dir for a short path", names)
	}

	// Exactly at the limit still fits; one byte more does not. (fits, not
	// SocketDir, for the second: SocketDir would fall back to a short dir
	// under /run or /tmp, as the runtime dir here is no shorter than real.)
	name := strings.Repeat("s", MaxSocketPathLen-len(real)-1)
	if got, _ := SocketDir(real, name); got != real {
		t.Errorf("a path of exactly %d bytes should fit", MaxSocketPathLen)
	}
	if fits(real, name+"s") {
		t.Errorf("a path of %d bytes should not fit", MaxSocketPathLen+1)
	}
}

func TestSocketDirLongPathGetsShortPrivateDir(t *testing.T) {
	withUmask(t, 0o022)
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	real := longDir(t)
	got, err := SocketDir(real, "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	// The first candidate: /run for root, /run/user/UID or this
	// XDG_RUNTIME_DIR for another user.
	runtime = currentBases()[0]
	if filepath.Dir(got) != runtimeParent(runtime) {
		t.Fatalf("SocketDir = %q, want it under %s", got, runtimeParent(runtime))
	}
	if len(filepath.Base(got)) != 16 {
		t.Errorf("short dir name %q is not 16 hex digits", filepath.Base(got))
	}
	assertMode(t, runtimeParent(runtime), 0o700)
	assertMode(t, got, 0o700)

	// A socket can really be bound there.
	sock := filepath.Join(got, "ready.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on %s: %v", sock, err)
	}
	ln.Close()

	// Same real dir → same short dir, reused as it is.
	again, err := SocketDir(real, "ready.sock")
	if err != nil || again != got {
		t.Errorf("second SocketDir = %q, %v; want %q", again, err, got)
	}
	// Another real dir → another short dir.
	other, err := SocketDir(real+"x", "ready.sock")
	if err == nil && other == got {
		t.Errorf("two real dirs share the short dir %s", got)
	}

	if err := RemoveSocketDir(real); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(got); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RemoveSocketDir left %s: %v", got, err)
	}
}

// squats are the ways a boxsup-UID parent can be unfit: each makes parent
// something SocketDir must neither use nor change.
var squats = map[string]func(t *testing.T, parent string){
	"world-readable": func(t *testing.T, parent string) {
		mustMkdir(t, parent)
		if err := os.Chmod(parent, 0o755); err != nil {
			t.Fatal(err)
		}
	},
	"group-writable": func(t *testing.T, parent string) {
		mustMkdir(t, parent)
		if err := os.Chmod(parent, 0o770); err != nil {
			t.Fatal(err)
		}
	},
	"symlink": func(t *testing.T, parent string) {
		target := t.TempDir() // 0700 and ours: only the link is wrong
		if err := os.Symlink(target, parent); err != nil {
			t.Fatal(err)
		}
	},
	"file": func(t *testing.T, parent string) {
		if err := os.WriteFile(parent, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	},
	"other owner": func(t *testing.T, parent string) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory to another user")
		}
		mustMkdir(t, parent) // 0700, exactly as the attacker's mkdir -m 700
		if err := os.Chown(parent, 54321, 54321); err != nil {
			t.Fatal(err)
		}
	},
}

// squatUnchanged checks that SocketDir neither changed a squatted parent
// nor created anything in it.
func squatUnchanged(t *testing.T, parent string, before os.FileInfo) {
	t.Helper()
	after, err := os.Lstat(parent)
	if err != nil {
		t.Fatalf("the squatted parent is gone: %v", err)
	}
	if before.Mode() != after.Mode() {
		t.Errorf("the squatted parent's mode changed from %v to %v", before.Mode(), after.Mode())
	}
	if before.Mode().IsDir() {
		assertEmpty(t, parent)
	}
}

// TestSocketDirPassesOverASquattedParent: a boxsup-UID parent another user
// made first (or any unfit one) sends SocketDir to the next candidate, every
// time alike, instead of failing; RemoveSocketDir leaves the squat alone.
func TestSocketDirPassesOverASquattedParent(t *testing.T) {
	t.Parallel()
	real := longDir(t)
	for name, squat := range squats {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bases := []string{shortTempDir(t), shortTempDir(t)}
			squatted := runtimeParent(bases[0])
			squat(t, squatted)
			before, _ := os.Lstat(squatted)

			got, err := shortDir(bases, real, "ready.sock")
			if err != nil {
				t.Fatalf("shortDir with the first parent squatted: %v", err)
			}
			if filepath.Dir(got) != runtimeParent(bases[1]) {
				t.Fatalf("shortDir = %s, want it under %s", got, runtimeParent(bases[1]))
			}
			assertMode(t, got, 0o700)
			if again, err := shortDir(bases, real, "ready.sock"); again != got || err != nil {
				t.Errorf("second shortDir = %q, %v; want %s again", again, err, got)
			}
			squatUnchanged(t, squatted, before)

			if err := removeShortDirs(bases, real); err != nil {
				t.Errorf("removeShortDirs: %v", err)
			}
			if _, err := os.Lstat(got); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("removeShortDirs left %s: %v", got, err)
			}
			squatUnchanged(t, squatted, before)
		})
	}
}

// TestSocketDirRefusesWhenEveryParentIsSquatted: with no candidate left the
// error is ErrUnsafeHome naming every squatted parent, why, and the fix.
func TestSocketDirRefusesWhenEveryParentIsSquatted(t *testing.T) {
	t.Parallel()
	real := longDir(t)
	for name, squat := range squats {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bases := []string{shortTempDir(t), shortTempDir(t)}
			var befores []os.FileInfo
			for _, b := range bases {
				squat(t, runtimeParent(b))
				fi, _ := os.Lstat(runtimeParent(b))
				befores = append(befores, fi)
			}
			got, err := shortDir(bases, real, "ready.sock")
			if !errors.Is(err, messages.ErrUnsafeHome) {
				t.Fatalf("shortDir = %q, %v; want ErrUnsafeHome", got, err)
			}
			for _, want := range []string{runtimeParent(bases[0]), runtimeParent(bases[1]), "XDG_RUNTIME_DIR", "shorter home path"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if name == "other owner" && !strings.Contains(err.Error(), "uid 54321") {
				t.Errorf("error %q does not name the owner", err)
			}
			for i, b := range bases {
				squatUnchanged(t, runtimeParent(b), befores[i])
			}
		})
	}
}

// TestSocketDirOfRootSkipsASquattedTmp is the attack itself: another user
// made /tmp/boxsup-0 (mode 0700, theirs) first. Root's short directory goes
// to /run, which only root may write, so the squat is never even looked
// at; only when /run is unfit is the squat met, and named.
func TestSocketDirOfRootSkipsASquattedTmp(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	real := longDir(t)
	roots := runtimeRoots{run: shortTempDir(t), runUser: shortTempDir(t), tmp: shortTempDir(t)}
	if err := os.Chmod(roots.run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Chmod(roots.tmp, 0o1777); err != nil {
		t.Fatal(err)
	}
	squat := filepath.Join(roots.tmp, "boxsup-0")
	squats["other owner"](t, squat)

	got, err := shortDir(runtimeBases("", 0, roots), real, "boxsup.sock")
	if err != nil {
		t.Fatalf("with /tmp/boxsup-0 squatted: %v", err)
	}
	if want := filepath.Join(roots.run, "boxsup-0"); filepath.Dir(got) != want {
		t.Errorf("shortDir = %s, want it under %s", got, want)
	}

	if err := os.Chmod(roots.run, 0o777); err != nil { // /run unfit: only /tmp is left
		t.Fatal(err)
	}
	_, err = shortDir(runtimeBases("", 0, roots), real, "boxsup.sock")
	wantUnsafe(t, "only a squatted /tmp", err, squat)
	wantUnsafe(t, "only a squatted /tmp", err, "uid 54321")
}
func TestSocketDirRefusesSquattedShortDir(t *testing.T) {
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	real := longDir(t)
	want, err := SocketDir(real, "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(want); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), want); err != nil {
		t.Fatal(err)
	}
	if got, err := SocketDir(real, "ready.sock"); err == nil {
		t.Fatalf("SocketDir accepted a symlink as the short dir: %q", got)
	}
}

func TestSocketDirErrors(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	if _, err := SocketDir("relative/dir", "x.sock"); err == nil {
		t.Error("SocketDir accepted a relative dir")
	}
	if _, err := SocketDir("/a", strings.Repeat("n", MaxSocketPathLen)); err == nil {
		t.Error("SocketDir accepted a name that cannot fit anywhere")
	}
}

// TestRuntimeBasesForRoot: $XDG_RUNTIME_DIR when it is root's and
// private, then /run when it is root's and not writable by others, then
// /tmp, each once.
func TestRuntimeBasesForRoot(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	roots := runtimeRoots{run: t.TempDir(), runUser: t.TempDir(), tmp: stickyDir(t)}
	if err := os.Chmod(roots.run, 0o755); err != nil {
		t.Fatal(err)
	}
	xdg := t.TempDir()
	chmodded := func(mode os.FileMode) string {
		d := t.TempDir()
		if err := syscall.Chmod(d, uint32(mode)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	theirs := t.TempDir()
	if err := os.Chown(theirs, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	xdgLink := filepath.Join(t.TempDir(), "link")
	symlink(t, xdg, xdgLink, -1)
	for value, want := range map[string][]string{
		"":                              {roots.run, roots.tmp},
		xdg:                             {roots.run, xdg, roots.tmp},
		xdg + "/":                       {roots.run, xdg, roots.tmp},
		"relative":                      {roots.run, roots.tmp},
		filepath.Join(xdg, "missing"):   {roots.run, roots.tmp},
		roots.tmp:                       {roots.run, roots.tmp}, // shared: never first
		roots.run:                       {roots.run, roots.tmp},
		chmodded(0o777):                 {roots.run, roots.tmp},
		chmodded(0o1777):                {roots.run, roots.tmp},
		chmodded(0o755):                 nil,                    // filled in below
		theirs:                          {roots.run, roots.tmp}, // sudo -E keeping a user's
		xdgLink:                         {roots.run, roots.tmp},
		filepath.Join(xdg, "..", "x"):   {roots.run, roots.tmp},
		filepath.Join(roots.runUser):    {roots.run, roots.runUser, roots.tmp},
		filepath.Join(roots.tmp, "..."): {roots.run, roots.tmp},
	} {
		if want == nil {
			want = []string{roots.run, value, roots.tmp}
		}
		if got := runtimeBases(value, 0, roots); !slices.Equal(got, want) {
			t.Errorf("XDG_RUNTIME_DIR=%q: runtimeBases = %q, want %q", value, got, want)
		}
	}

	for name, unfit := range map[string]func(){
		"group-writable": func() { _ = os.Chmod(roots.run, 0o775) },
		"sticky":         func() { _ = syscall.Chmod(roots.run, 0o1777) },
		"another owner":  func() { _ = os.Chmod(roots.run, 0o755); _ = os.Chown(roots.run, nobodyUID, nobodyUID) },
	} {
		unfit()
		if got := runtimeBases("", 0, roots); !slices.Equal(got, []string{roots.tmp}) {
			t.Errorf("/run %s: runtimeBases = %q, want only /tmp", name, got)
		}
		_ = os.Chown(roots.run, 0, 0)
	}
	for name, run := range map[string]string{"missing": filepath.Join(roots.run, "missing"), "a symlink": xdgLink} {
		r := roots
		r.run = run
		if got := runtimeBases("", 0, r); !slices.Equal(got, []string{roots.tmp}) {
			t.Errorf("/run %s: runtimeBases = %q, want only /tmp", name, got)
		}
	}
}

// TestRuntimeBasesForAUser: another user gets /run/user/UID (when it is
// theirs and 0700), then a private $XDG_RUNTIME_DIR, never /run.
func TestRuntimeBasesForAUser(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	t.Parallel()
	const uid = 4242
	roots := runtimeRoots{run: t.TempDir(), runUser: t.TempDir(), tmp: stickyDir(t)}
	if err := os.Chmod(roots.run, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(roots.runUser, strconv.Itoa(uid))
	if got := runtimeBases("", uid, roots); !slices.Equal(got, []string{roots.tmp}) {
		t.Errorf("without /run/user/UID: runtimeBases = %q, want only /tmp", got)
	}
	mustMkdir(t, mine)
	if err := os.Chown(mine, uid, uid); err != nil {
		t.Fatal(err)
	}
	if got := runtimeBases("", uid, roots); !slices.Equal(got, []string{mine, roots.tmp}) {
		t.Errorf("runtimeBases = %q, want [%s %s]", got, mine, roots.tmp)
	}
	xdg := t.TempDir()
	if err := os.Chown(xdg, uid, uid); err != nil {
		t.Fatal(err)
	}
	if got := runtimeBases(xdg, uid, roots); !slices.Equal(got, []string{mine, xdg, roots.tmp}) {
		t.Errorf("with XDG_RUNTIME_DIR: runtimeBases = %q, want [%s %s %s]", got, mine, xdg, roots.tmp)
	}
	if got := runtimeBases(roots.run, uid, roots); !slices.Equal(got, []string{mine, roots.tmp}) {
		t.Errorf("XDG_RUNTIME_DIR of root's: runtimeBases = %q, want [%s %s]", got, mine, roots.tmp)
	}
	if err := os.Chmod(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := runtimeBases("", uid, roots); !slices.Equal(got, []string{roots.tmp}) {
		t.Errorf("/run/user/UID 0755: runtimeBases = %q, want only /tmp", got)
	}
	if err := os.Chmod(mine, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mine, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := runtimeBases("", uid, roots); !slices.Equal(got, []string{roots.tmp}) {
		t.Errorf("/run/user/UID of root's: runtimeBases = %q, want only /tmp", got)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
