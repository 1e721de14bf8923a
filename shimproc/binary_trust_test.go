package shimproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// nobodyUID is the uid tests give what "another user" planted.
const nobodyUID = 65534

// shimUnderStickyDir makes DIR/x/boxsup-shim with DIR sticky and
// world-writable (as /tmp), and returns x and the shim's path.
func shimUnderStickyDir(t *testing.T) (string, string) {
	t.Helper()
	sticky := trustDir(t)
	chmod(t, sticky, 0o1777)
	x := filepath.Join(sticky, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	return x, writeScript(t, x, "boxsup-shim", "exit 0")
}

// trustDir makes a fresh directory for one case, 0755 as a bin directory
// would be (t.TempDir's 0700 says nothing about the mode rules).
func trustDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chmod sets a mode with the sticky bit if asked (os.Chmod takes Go's
// ModeSticky, not S_ISVTX).
func chmod(t *testing.T, path string, mode uint32) {
	t.Helper()
	if err := syscall.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func lchownNobody(t *testing.T, path string) {
	t.Helper()
	if err := os.Lchown(path, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// wantRefused fails unless err is ErrShimNotFound naming every mention
// (the path, the owner or mode at fault, the fix).
func wantRefused(t *testing.T, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, messages.ErrShimNotFound) {
		t.Fatalf("err = %v, want ErrShimNotFound", err)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

// A binary that only this uid or root controls passes, however it is
// reached: directly, through links of ours, from a directory in a sticky
// one (as /tmp/x/boxsup-shim), and the real path is returned.
func TestCheckShimBinaryAccepts(t *testing.T) {
	t.Parallel()
	t.Run("the reference shim", func(t *testing.T) {
		t.Parallel()
		real, err := CheckShimBinary(shimBinary)
		if err != nil || real != shimBinary {
			t.Fatalf("CheckShimBinary(%s) = %q, %v", shimBinary, real, err)
		}
	})
	t.Run("through links", func(t *testing.T) {
		t.Parallel()
		dir := trustDir(t)
		shim := writeScript(t, dir, "shim", "exit 0")
		links := filepath.Join(dir, "links")
		if err := os.Mkdir(links, 0o755); err != nil {
			t.Fatal(err)
		}
		symlink(t, "../shim", filepath.Join(links, "relative"))
		symlink(t, filepath.Join(links, "relative"), filepath.Join(links, "absolute"))
		for _, p := range []string{filepath.Join(links, "relative"), filepath.Join(links, "absolute"), filepath.Join(links, "..", "links", ".", "absolute")} {
			real, err := CheckShimBinary(p)
			if err != nil || real != shim {
				t.Errorf("CheckShimBinary(%s) = %q, %v; want %s", p, real, err, shim)
			}
		}
	})
	t.Run("under a sticky directory", func(t *testing.T) {
		t.Parallel()
		_, shim := shimUnderStickyDir(t)
		if _, err := CheckShimBinary(shim); err != nil {
			t.Fatal(err)
		}
	})
}

// What nobody else may control, the binary itself first: each is refused
// with ErrShimNotFound naming the path, what is at fault and the fix, and
// nothing is chmod'ed to make it pass.
func TestCheckShimBinaryRefusesWhatOthersCanWrite(t *testing.T) {
	t.Parallel()
	for _, mode := range []uint32{0o777, 0o775, 0o757} {
		t.Run(strconv.FormatUint(uint64(mode), 8), func(t *testing.T) {
			t.Parallel()
			shim := writeScript(t, trustDir(t), "boxsup-shim", "exit 0")
			chmod(t, shim, mode)
			_, err := CheckShimBinary(shim)
			wantRefused(t, err, shim, fmt.Sprintf("mode %04o", mode), "chmod go-w "+shim)
			if fi, serr := os.Stat(shim); serr != nil || uint32(fi.Mode().Perm()) != mode {
				t.Errorf("the mode changed: %v, %v", fi.Mode(), serr)
			}
		})
	}
	t.Run("directory writable by others", func(t *testing.T) {
		t.Parallel()
		dir := trustDir(t)
		shim := writeScript(t, dir, "boxsup-shim", "exit 0")
		chmod(t, dir, 0o777)
		_, err := CheckShimBinary(shim)
		wantRefused(t, err, shim, "directory "+dir, "0777", "chmod go-w "+dir)
	})
	t.Run("link in a directory writable by others", func(t *testing.T) {
		t.Parallel()
		shim := writeScript(t, trustDir(t), "boxsup-shim", "exit 0")
		open := trustDir(t)
		link := filepath.Join(open, "boxsup-shim")
		symlink(t, shim, link)
		chmod(t, open, 0o777)
		_, err := CheckShimBinary(link)
		wantRefused(t, err, link, "directory "+open)
	})
	t.Run("link into a directory writable by others", func(t *testing.T) {
		t.Parallel()
		open := trustDir(t)
		shim := writeScript(t, open, "boxsup-shim", "exit 0")
		chmod(t, open, 0o777)
		link := filepath.Join(trustDir(t), "boxsup-shim")
		symlink(t, shim, link)
		_, err := CheckShimBinary(link)
		wantRefused(t, err, link, "directory "+open)
	})
	t.Run("not executable", func(t *testing.T) {
		t.Parallel()
		shim := writeScript(t, trustDir(t), "boxsup-shim", "exit 0")
		chmod(t, shim, 0o644)
		_, err := CheckShimBinary(shim)
		wantRefused(t, err, shim, "not an executable file")
	})
	t.Run("a directory", func(t *testing.T) {
		t.Parallel()
		dir := trustDir(t)
		_, err := CheckShimBinary(dir)
		wantRefused(t, err, dir, "is a directory")
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		missing := filepath.Join(trustDir(t), "boxsup-shim")
		_, err := CheckShimBinary(missing)
		if !errors.Is(err, messages.ErrShimNotFound) || err.Error() != "box runner binary not found: "+missing {
			t.Errorf("err = %v, want exactly ErrShimNotFound with the path", err)
		}
	})
}

// What another user owns: the binary, a directory above it (also under a
// sticky one, the /tmp/x of /tmp/x/boxsup-shim), a link on the way.
func TestCheckShimBinaryRefusesWhatAnotherUserOwns(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user (nobody, 65534)")
	t.Parallel()
	t.Run("binary", func(t *testing.T) {
		t.Parallel()
		shim := writeScript(t, trustDir(t), "boxsup-shim", "exit 0")
		lchownNobody(t, shim)
		_, err := CheckShimBinary(shim)
		wantRefused(t, err, shim, "owned by uid 65534", "chown 0 "+shim)
	})
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		dir := trustDir(t)
		shim := writeScript(t, dir, "boxsup-shim", "exit 0")
		lchownNobody(t, dir)
		_, err := CheckShimBinary(shim)
		wantRefused(t, err, shim, "directory "+dir+" is owned by uid 65534")
	})
	t.Run("directory under a sticky one", func(t *testing.T) {
		t.Parallel()
		x, shim := shimUnderStickyDir(t)
		lchownNobody(t, x)
		_, err := CheckShimBinary(shim)
		wantRefused(t, err, shim, "directory "+x+" is owned by uid 65534")
	})
	t.Run("link", func(t *testing.T) {
		t.Parallel()
		shim := writeScript(t, trustDir(t), "boxsup-shim", "exit 0")
		link := filepath.Join(trustDir(t), "boxsup-shim")
		symlink(t, shim, link)
		lchownNobody(t, link)
		_, err := CheckShimBinary(link)
		wantRefused(t, err, link, "symbolic link "+link+" is owned by uid 65534")
	})
}

// The attack: a shim binary another user controls would read the box's
// spec, every secret in it, from its stdin. Spawn refuses it before
// anything runs, so nothing is stolen.
func TestSpawnRefusesAShimOthersControl(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		root    bool
		prepare func(t *testing.T, shim string)
	}{
		{"mode 0777", false, func(t *testing.T, shim string) { chmod(t, shim, 0o777) }},
		{"owned by nobody", true, func(t *testing.T, shim string) { lchownNobody(t, shim) }},
		{"in a directory others can write", false, func(t *testing.T, shim string) { chmod(t, filepath.Dir(shim), 0o777) }},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root {
				testutil.RequireRoot(t, "chowns files to another user (nobody, 65534)")
			}
			t.Parallel()
			stolen := filepath.Join(t.TempDir(), "stolen")
			shim := writeScript(t, trustDir(t), "boxsup-shim", "cat > "+stolen)
			c.prepare(t, shim)
			box := newBox(t, "untrusted-shim-"+strconv.Itoa(i))
			_, err := Spawn(context.Background(), SpawnRequest{
				Box: box, Binary: shim, Spec: secretSpec("/bin/sleep", "30"),
				ReadyTimeout: 3 * time.Second, Cgroup: CgroupOff,
			})
			if b, rerr := os.ReadFile(stolen); rerr == nil {
				t.Errorf("the untrusted shim ran and got the spec:\n%s", b)
			}
			wantRefused(t, err, shim)
		})
	}
}

// Asking a binary for its capabilities runs it: an untrusted one is not
// run, and a binary that passed once and was then made writable by others,
// or swapped for another user's, is checked again rather than trusted on
// the strength of a cached answer.
func TestCapabilitiesChecksTheBinaryEveryTime(t *testing.T) {
	t.Parallel()
	dir := trustDir(t)
	ran := filepath.Join(t.TempDir(), "ran")
	shim := writeScript(t, dir, "boxsup-shim", "echo run >> "+ran+"; exit 125")
	c := newCapabilityCache(readCapabilities)
	if caps, err := c.get(context.Background(), shim); err != nil || !caps.Legacy {
		t.Fatalf("trusted binary: %+v, %v", caps, err)
	}
	runs := func() int {
		b, _ := os.ReadFile(ran)
		return strings.Count(string(b), "run")
	}
	if n := runs(); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}

	chmod(t, shim, 0o777)
	_, err := c.get(context.Background(), shim)
	wantRefused(t, err, shim, "chmod go-w")
	chmod(t, shim, 0o755)

	chmod(t, dir, 0o777)
	_, err = c.get(context.Background(), shim)
	wantRefused(t, err, "directory "+dir)
	chmod(t, dir, 0o755)

	if os.Geteuid() == 0 {
		swapped := writeScript(t, dir, "planted", "echo run >> "+ran+"; exit 125")
		lchownNobody(t, swapped)
		if err := os.Rename(swapped, shim); err != nil {
			t.Fatal(err)
		}
		_, err = c.get(context.Background(), shim)
		wantRefused(t, err, shim, "owned by uid 65534")
	}
	if n := runs(); n != 1 {
		t.Errorf("the binary ran %d times, want only the first, trusted, time", n)
	}
}
