package layout

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// nobodyUID is the uid tests give files "another user" planted.
const nobodyUID = 65534

func wantUnsafe(t *testing.T, what string, err error, mention string) {
	t.Helper()
	if !errors.Is(err, messages.ErrUnsafeHome) {
		t.Fatalf("%s: err = %v, want ErrUnsafeHome", what, err)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Errorf("%s: error %q does not name %s", what, err, mention)
	}
}

func TestOpenRefusesAHomeOthersCanWrite(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o770, 0o702} {
		root := filepath.Join(t.TempDir(), "home")
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(root, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(root)
		wantUnsafe(t, "home mode "+mode.String(), err, root)
		if !strings.Contains(err.Error(), "chmod go-w") {
			t.Errorf("error %q does not give the fix", err)
		}
		if got := modeOf(t, root); got != mode {
			t.Errorf("Open changed the mode to %v", got)
		}
	}
}

func TestOpenRefusesBoxesOthersCanWrite(t *testing.T) {
	h := openHome(t)
	if err := os.Chmod(h.BoxesDir(), 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := Open(h.Root)
	wantUnsafe(t, "boxes 0777", err, h.BoxesDir())
}

func TestOpenRefusesAHomeOwnedByAnotherUser(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	root := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	_, err := Open(root)
	wantUnsafe(t, "home owned by nobody", err, "chown")
	if _, serr := os.Lstat(filepath.Join(root, boxesDirName)); serr == nil {
		t.Error("Open created boxes/ in a home it refused")
	}
}

func TestOpenRefusesAnAncestorOthersCanReplace(t *testing.T) {
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o777); err != nil { // no sticky bit
		t.Fatal(err)
	}
	_, err := Open(filepath.Join(parent, "home"))
	wantUnsafe(t, "world-writable parent", err, parent)

	if err := syscall.Chmod(parent, 0o1777); err != nil { // as /tmp: fine
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(parent, "home")); err != nil {
		t.Fatalf("sticky parent: %v", err)
	}
}

func TestOpenCanonicalisesTheHome(t *testing.T) {
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	h, err := Open(filepath.Join(link, "home"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(real, "home"); h.Root != want {
		t.Errorf("Root = %s, want %s", h.Root, want)
	}
	h2, err := Open(filepath.Join(real, "home"))
	if err != nil {
		t.Fatal(err)
	}
	s1, err := h.ControlSocketPath()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := h2.ControlSocketPath()
	if s1 != s2 {
		t.Errorf("two names of one home give two sockets: %s, %s", s1, s2)
	}
}

func TestBoxFilesAreNeverFollowed(t *testing.T) {
	b := createdBox(t)
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte(`{"id":"web","state":"running"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{specFileName, stateFileName, exitFileName, shimLogFileName, consoleFileName} {
		if err := os.Symlink(target, filepath.Join(b.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.ReadSpec()
	wantUnsafe(t, "ReadSpec", err, b.SpecPath())
	_, err = b.ReadState()
	wantUnsafe(t, "ReadState", err, b.StatePath())
	_, err = b.ReadExit()
	wantUnsafe(t, "ReadExit", err, b.ExitPath())
	f, err := b.OpenShimLog()
	if err == nil {
		f.Close()
	}
	wantUnsafe(t, "OpenShimLog", err, b.ShimLogPath())
	f, err = b.OpenConsoleLog()
	if err == nil {
		f.Close()
	}
	wantUnsafe(t, "OpenConsoleLog", err, b.ConsoleLogPath())
	f, err = OpenAppend(b.ConsoleLogPath(), 0o600)
	if err == nil {
		f.Close()
	}
	wantUnsafe(t, "OpenAppend", err, b.ConsoleLogPath())

	// A write replaces the link instead of writing through it.
	if err := b.WriteState(messages.StateRecord{ID: "web", State: messages.StateExited}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(b.StatePath()); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("state.json after WriteState: %v, %v", fi, err)
	}
	if got, _ := os.ReadFile(target); string(got) != `{"id":"web","state":"running"}` {
		t.Errorf("the link's target changed: %q", got)
	}
}

func TestABoxDirectoryLinkIsRefused(t *testing.T) {
	h := openHome(t)
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(h.BoxesDir(), "web")); err != nil {
		t.Fatal(err)
	}
	b, _ := h.Box("web")
	_, err := b.ReadSpec()
	wantUnsafe(t, "box dir link", err, b.Dir)
	if err := b.WriteState(messages.StateRecord{ID: "web", State: messages.StateExited}); !errors.Is(err, messages.ErrUnsafeHome) {
		t.Errorf("WriteState through a linked box directory: %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("files were written through the link: %v", entries)
	}
}

func TestRecordsOthersWroteAreRefused(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	b := createdBox(t)
	if err := b.WriteSpec(messages.StartBox{ID: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteState(messages.StateRecord{ID: "web", State: messages.StateRestarting}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{b.SpecPath(), b.StatePath()} {
		if err := os.Chown(p, nobodyUID, nobodyUID); err != nil {
			t.Fatal(err)
		}
	}
	_, err := b.ReadSpec()
	wantUnsafe(t, "spec owned by nobody", err, "uid 65534")
	_, err = b.ReadState()
	wantUnsafe(t, "state owned by nobody", err, "uid 65534")
}

func TestRecordsWithLooseModesAreRefused(t *testing.T) {
	b := createdBox(t)
	if err := b.WriteSpec(messages.StartBox{ID: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(b.SpecPath(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := b.ReadSpec()
	wantUnsafe(t, "spec 0644", err, "chmod 0600")
}

func TestAFIFOInPlaceOfARecordDoesNotBlock(t *testing.T) {
	b := createdBox(t)
	if err := syscall.Mkfifo(b.StatePath(), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := b.ReadState()
		done <- err
	}()
	select {
	case err := <-done:
		wantUnsafe(t, "FIFO state.json", err, "not a regular file")
	case <-time.After(10 * time.Second):
		t.Fatal("ReadState blocked on a FIFO")
	}
}

func TestTheLockFileIsNeverFollowedOrTruncated(t *testing.T) {
	h := openHome(t)
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, h.LockPath()); err != nil {
		t.Fatal(err)
	}
	_, err := h.Lock()
	wantUnsafe(t, "lock symlink", err, h.LockPath())
	assertContent(t, target, "keep me\n", 0o644)

	if err := os.Remove(h.LockPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(target, h.LockPath()); err != nil {
		t.Fatal(err)
	}
	_, err = h.Lock()
	wantUnsafe(t, "lock hard link", err, "hard links")
	assertContent(t, target, "keep me\n", 0o644)
}

func TestALockFileOfAnotherUserIsNotTouched(t *testing.T) {
	testutil.RequireRoot(t, "chowns files to another user")
	h := openHome(t)
	if err := os.WriteFile(h.LockPath(), []byte("theirs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(h.LockPath(), nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	_, err := h.Lock()
	wantUnsafe(t, "lock owned by nobody", err, "uid 65534")
	assertContent(t, h.LockPath(), "theirs\n", 0o644)
}

func TestShimLogHardLinkIsRefused(t *testing.T) {
	b := createdBox(t)
	target := filepath.Join(b.Dir, "other")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(target, b.ShimLogPath()); err != nil {
		t.Fatal(err)
	}
	f, err := b.OpenShimLog()
	if err == nil {
		f.Close()
	}
	wantUnsafe(t, "shim.log hard link", err, "hard links")
}

func TestShimLogIsCreatedPrivate(t *testing.T) {
	b := createdBox(t)
	f, err := b.OpenShimLog()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	assertContent(t, b.ShimLogPath(), "hello\n", 0o600)
	r, err := OpenRead(b.ShimLogPath())
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	_, err = b.OpenConsoleLog()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing console.log: %v, want fs.ErrNotExist", err)
	}
}

func assertContent(t *testing.T, path, want string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s = %q, want %q", path, got, want)
	}
	if m := modeOf(t, path); m != mode {
		t.Errorf("%s mode = %v, want %v", path, m, mode)
	}
}

// TestTheOpenatFallbackRefusesLinksToo runs the link tests again as on a
// kernel without openat2.
func TestTheOpenatFallbackRefusesLinksToo(t *testing.T) {
	noOpenat2.Store(true)
	t.Cleanup(func() { noOpenat2.Store(false) })
	t.Run("files", TestBoxFilesAreNeverFollowed)
	t.Run("box dir", TestABoxDirectoryLinkIsRefused)
	t.Run("lock", TestTheLockFileIsNeverFollowedOrTruncated)
	t.Run("round trip", TestStateRoundTrip)
}
