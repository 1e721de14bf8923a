package layout

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// newBox returns a box (not yet created) in a fresh home.
func newBox(t *testing.T, id string) (*Home, Box) {
	t.Helper()
	h := openHome(t)
	b, err := h.Box(id)
	if err != nil {
		t.Fatal(err)
	}
	return h, b
}

func TestBoxPaths(t *testing.T) {
	b := Box{ID: "web", Dir: "/h/boxes/web"}
	for got, want := range map[string]string{
		b.SpecPath():       "/h/boxes/web/spec.json",
		b.StatePath():      "/h/boxes/web/state.json",
		b.ExitPath():       "/h/boxes/web/exit.json",
		b.PrevExitPath():   "/h/boxes/web/exit.previous.json",
		b.ShimLogPath():    "/h/boxes/web/shim.log",
		b.ConsoleLogPath(): "/h/boxes/web/console.log",
		b.SocketsDir():     "/h/boxes/web/sockets",
	} {
		if got != want {
			t.Errorf("path %q, want %q", got, want)
		}
	}
}

func TestBoxCreate(t *testing.T) {
	withUmask(t, 0o277)
	_, b := newBox(t, "web")
	if b.Exists() {
		t.Fatal("Exists before Create")
	}
	if err := b.Create(); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !b.Exists() {
		t.Fatal("not Exists after Create")
	}
	assertMode(t, b.Dir, 0o700)
	assertMode(t, b.SocketsDir(), 0o700)

	// Exclusive: a second Create fails and changes nothing.
	marker := filepath.Join(b.Dir, "marker")
	if err := os.WriteFile(marker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := b.Create()
	if !errors.Is(err, messages.ErrAlreadyExists) || !strings.Contains(err.Error(), `"web"`) {
		t.Fatalf("second Create = %v, want ErrAlreadyExists naming the box", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("second Create disturbed the box: %v", err)
	}
}

func TestBoxCreateWithoutHomeLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	b := Box{ID: "web", Dir: filepath.Join(dir, "missing", "web")}
	if err := b.Create(); err == nil {
		t.Fatal("Create under a missing boxes dir succeeded")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("Create left %v behind", names)
	}
}

func TestBoxRefusesForgedValues(t *testing.T) {
	victim := t.TempDir()
	for _, b := range []Box{
		{},
		{ID: "web", Dir: victim},         // Dir is not .../ID
		{ID: "web", Dir: "relative/web"}, // not absolute
		{ID: "..", Dir: filepath.Join(victim, "..")}, // invalid id
	} {
		if err := b.Remove(); !errors.Is(err, messages.ErrInvalidID) {
			t.Errorf("Remove(%+v) = %v, want ErrInvalidID", b, err)
		}
		if err := b.Create(); !errors.Is(err, messages.ErrInvalidID) {
			t.Errorf("Create(%+v) = %v, want ErrInvalidID", b, err)
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("a forged Box damaged %s: %v", victim, err)
	}
}

func TestBoxRemove(t *testing.T) {
	h, b := newBox(t, "web")
	if err := b.Remove(); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("Remove of a missing box = %v, want ErrNotFound", err)
	}
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteState(messages.StateRecord{ID: "web", State: messages.StateExited}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(b.SocketsDir(), "deep", "er"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if b.Exists() {
		t.Error("box still exists after Remove")
	}
	if names := dirNames(t, h.BoxesDir()); len(names) != 0 {
		t.Errorf("Remove left %v in the boxes dir", names)
	}
	if err := b.Remove(); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
}

// A crash in the middle of the deletion must leave no half box under its own
// name: the box is gone from BoxIDs, can be created again, and SweepRemoved
// finishes the job.
func TestBoxRemoveCrashMidwayLeavesNoHalfBox(t *testing.T) {
	h, b := newBox(t, "web")
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteSpec(messages.StartBox{ID: "web"}); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteState(messages.StateRecord{ID: "web", State: messages.StateExited}); err != nil {
		t.Fatal(err)
	}
	other, err := h.Box("other")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Create(); err != nil {
		t.Fatal(err)
	}

	crash := errors.New("simulated crash")
	removeAll = func(path string) error {
		// Delete part of the tree, then "crash".
		_ = os.Remove(filepath.Join(path, "spec.json"))
		return crash
	}
	t.Cleanup(func() { removeAll = os.RemoveAll })

	err = b.Remove()
	if !errors.Is(err, crash) {
		t.Fatalf("Remove = %v, want the simulated crash", err)
	}
	// For people: where the files are, and when they go (no internal names).
	if msg := err.Error(); !strings.Contains(msg, filepath.Join(h.BoxesDir(), ".web.removed-")) ||
		!strings.Contains(msg, "deleted when the box is removed again or a supervisor next opens the home") || strings.Contains(msg, "Sweep") {
		t.Errorf("Remove = %q, want it to name the directory left and say when it is deleted", msg)
	}
	if b.Exists() {
		t.Error("half-removed box still visible under its own name")
	}
	ids, err := h.BoxIDs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"other"}) {
		t.Errorf("BoxIDs after a crashed Remove = %q, want [other]", ids)
	}
	var tombs []string
	for _, n := range dirNames(t, h.BoxesDir()) {
		if strings.HasPrefix(n, ".web.removed-") {
			tombs = append(tombs, n)
		}
	}
	if len(tombs) != 1 {
		t.Fatalf("want exactly one hidden .web.removed-* dir, have %v", dirNames(t, h.BoxesDir()))
	}
	if _, err := os.Stat(filepath.Join(h.BoxesDir(), tombs[0], "state.json")); err != nil {
		t.Errorf("the crash was supposed to leave state.json in the tombstone: %v", err)
	}
	if err := b.Create(); err != nil {
		t.Errorf("Create of the same id after a crashed Remove: %v", err)
	}

	removeAll = os.RemoveAll
	if err := h.SweepRemoved(); err != nil {
		t.Fatalf("SweepRemoved: %v", err)
	}
	names := dirNames(t, h.BoxesDir())
	slices.Sort(names)
	if !slices.Equal(names, []string{"other", "web"}) {
		t.Errorf("after SweepRemoved the boxes dir holds %q, want [other web]", names)
	}
}

func TestBoxRemoveAlsoRemovesShortSocketDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	h, err := Open(filepath.Join(t.TempDir(), longName(100)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Box("web")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	short, err := SocketDir(b.SocketsDir(), "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	if short == b.SocketsDir() {
		t.Fatalf("test setup: %s should be too long for a socket", b.SocketsDir())
	}
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(short); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("short socket dir %s survived Remove: %v", short, err)
	}
}

// TestPrepareThenPersist: Prepare makes a box with its spec visible at once
// (0700 dirs, 0600 spec), refuses an existing box without touching it, and
// Persist succeeds on what it wrote.
func TestPrepareThenPersist(t *testing.T) {
	home, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := home.Box("fast")
	if err != nil {
		t.Fatal(err)
	}
	spec := messages.StartBox{ID: "fast", Spec: messages.InstanceSpec{BoxID: "fast"}}
	if err := b.Prepare(spec); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	got, err := b.ReadSpec()
	if err != nil || got.ID != "fast" {
		t.Fatalf("ReadSpec after Prepare: %+v, %v", got, err)
	}
	for path, want := range map[string]os.FileMode{b.Dir: 0o700, b.SocketsDir(): 0o700, b.SpecPath(): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, %v; want %v", path, st.Mode().Perm(), err, want)
		}
	}
	if err := b.Prepare(spec); !errors.Is(err, messages.ErrAlreadyExists) {
		t.Fatalf("second Prepare: %v, want ErrAlreadyExists", err)
	}
	if got, err := b.ReadSpec(); err != nil || got.ID != "fast" {
		t.Fatalf("spec changed by the refused Prepare: %+v, %v", got, err)
	}
	if err := b.Persist(); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	missing, _ := home.Box("missing")
	if err := missing.Persist(); err == nil {
		t.Fatal("Persist of a box that was never prepared succeeded")
	}
}
