package layout

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// openHome opens a fresh home in a temporary directory.
func openHome(t *testing.T) *Home {
	t.Helper()
	h, err := Open(filepath.Join(t.TempDir(), "home"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return h
}

func TestResolveHome(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("HOME", tmp)

	t.Setenv("BOXSUP_HOME", "/srv/boxsup")
	t.Setenv("XDG_STATE_HOME", "/xdg/state")
	if got, err := ResolveHome(); err != nil || got != "/srv/boxsup" {
		t.Errorf("with BOXSUP_HOME: ResolveHome() = %q, %v; want /srv/boxsup", got, err)
	}

	t.Chdir(tmp)
	t.Setenv("BOXSUP_HOME", "rel/home")
	if got, err := ResolveHome(); err != nil || got != filepath.Join(tmp, "rel/home") {
		t.Errorf("with relative BOXSUP_HOME: ResolveHome() = %q, %v; want it under the working directory", got, err)
	}

	t.Setenv("BOXSUP_HOME", "")
	if got, err := ResolveHome(); err != nil || got != "/xdg/state/boxsup" {
		t.Errorf("with XDG_STATE_HOME: ResolveHome() = %q, %v; want /xdg/state/boxsup", got, err)
	}

	t.Setenv("XDG_STATE_HOME", "relative/state") // invalid per the XDG spec: ignored
	want := filepath.Join(tmp, ".local/state/boxsup")
	if got, err := ResolveHome(); err != nil || got != want {
		t.Errorf("with a relative XDG_STATE_HOME: ResolveHome() = %q, %v; want %q", got, err, want)
	}

	t.Setenv("XDG_STATE_HOME", "")
	if got, err := ResolveHome(); err != nil || got != want {
		t.Errorf("with neither: ResolveHome() = %q, %v; want %q", got, err, want)
	}

	t.Setenv("HOME", "")
	if got, err := ResolveHome(); !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("without HOME: ResolveHome() = %q, %v; want ErrBadSpec", got, err)
	}
	if _, err := os.Stat(want); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ResolveHome created %s", want)
	}
}

func TestOpenCreatesPrivateDirs(t *testing.T) {
	withUmask(t, 0o277) // would leave 0500 directories without an explicit chmod
	root := filepath.Join(t.TempDir(), "a", "b", "home")
	h, err := Open(root + "/") // unclean: Open cleans it
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if h.Root != root {
		t.Errorf("Root = %q, want %q", h.Root, root)
	}
	assertMode(t, root, 0o700)
	assertMode(t, h.BoxesDir(), 0o700)
	if _, err := Open(root); err != nil {
		t.Errorf("Open of an existing home: %v", err)
	}
}

func TestOpenFixesNothingElse(t *testing.T) {
	root := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	assertMode(t, root, 0o755)
	assertMode(t, filepath.Join(root, "boxes"), 0o700)
}

func TestOpenRefusesBadRoots(t *testing.T) {
	t.Chdir(t.TempDir())
	if _, err := Open("relative/home"); !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("Open(relative) = %v, want ErrBadSpec", err)
	}
	if _, err := os.Stat("relative"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(relative) created something: %v", err)
	}

	file := filepath.Join(t.TempDir(), "home")
	if err := os.WriteFile(file, []byte("not a dir"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(file)
	if !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("Open(file) = %v, want ErrBadSpec", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "not a dir" {
		t.Errorf("Open(file) changed the file: %q", b)
	}

	// root/boxes as a file is refused too.
	root := filepath.Join(t.TempDir(), "home")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "boxes"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("Open with boxes as a file = %v, want ErrBadSpec", err)
	}
}

func TestOpenFollowsSymlinkedRoot(t *testing.T) {
	real := filepath.Join(t.TempDir(), "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); err != nil {
		t.Fatalf("Open(symlink to dir): %v", err)
	}
	if fi, err := os.Stat(filepath.Join(real, "boxes")); err != nil || !fi.IsDir() {
		t.Errorf("boxes not created through the link: %v", err)
	}
}

func TestHomeBoxValidatesWithoutTouchingDisk(t *testing.T) {
	h := openHome(t)
	b, err := h.Box("web-1")
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "web-1" || b.Dir != filepath.Join(h.Root, "boxes", "web-1") {
		t.Errorf("Box = %+v", b)
	}
	if b.Exists() {
		t.Error("Box created the directory")
	}
	for _, bad := range []string{"", "..", "a/b", ".x"} {
		if _, err := h.Box(bad); !errors.Is(err, messages.ErrInvalidID) {
			t.Errorf("Box(%q) = %v, want ErrInvalidID", bad, err)
		}
	}
	if names := dirNames(t, h.BoxesDir()); len(names) != 0 {
		t.Errorf("boxes dir holds %v, want nothing", names)
	}
}

func TestBoxIDsSortedAndFiltered(t *testing.T) {
	h := openHome(t)
	for _, id := range []string{"zeta", "Alpha", "mid-1", "a.b"} {
		b, err := h.Box(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Create(); err != nil {
			t.Fatal(err)
		}
	}
	boxes := h.BoxesDir()
	for _, dir := range []string{".zeta.removed-0123", ".hidden", "-bad", "has space"} {
		if err := os.Mkdir(filepath.Join(boxes, dir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(boxes, "plainfile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(boxes, "zeta"), filepath.Join(boxes, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := h.BoxIDs()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Alpha", "a.b", "mid-1", "zeta"}
	if !slices.Equal(got, want) {
		t.Errorf("BoxIDs = %q, want %q", got, want)
	}

	if err := os.RemoveAll(boxes); err != nil {
		t.Fatal(err)
	}
	if got, err := h.BoxIDs(); err != nil || len(got) != 0 {
		t.Errorf("BoxIDs without a boxes dir = %q, %v; want none", got, err)
	}
}

func TestControlSocketPath(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	h := openHome(t)
	p, err := h.ControlSocketPath()
	if err != nil {
		t.Fatal(err)
	}
	if p != filepath.Join(h.Root, "boxsup.sock") {
		t.Errorf("short home: ControlSocketPath = %q, want it in the home", p)
	}

	long, err := Open(filepath.Join(t.TempDir(), longName(120)))
	if err != nil {
		t.Fatal(err)
	}
	p, err = long.ControlSocketPath()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) > MaxSocketPathLen || filepath.Base(p) != "boxsup.sock" {
		t.Errorf("long home: ControlSocketPath = %q (%d bytes), want a short path ending in boxsup.sock", p, len(p))
	}
	assertMode(t, filepath.Dir(p), 0o700)
}
