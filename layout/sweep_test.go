package layout

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// makeTombstones creates hidden directories (with a file in each) under the
// boxes directory, as interrupted removals leave them.
func makeTombstones(t *testing.T, h *Home, names ...string) {
	t.Helper()
	for _, n := range names {
		dir := filepath.Join(h.BoxesDir(), n)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "console.log"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A box's sweep deletes the files of its own earlier removals only; the
// home's deletes every removed box's, and never a box.
func TestSweepRemoved(t *testing.T) {
	h, web := newBox(t, "web")
	if err := web.Create(); err != nil {
		t.Fatal(err)
	}
	const (
		webA   = ".web.removed-0123456789abcdef"
		webB   = ".web.removed-fedcba9876543210"
		web2   = ".web2.removed-0123456789abcdef"
		nested = ".web.removed-x.removed-0123456789abcdef" // of box "web.removed-x"
	)
	makeTombstones(t, h, webA, webB, web2, nested)

	if err := web.SweepRemoved(); err != nil {
		t.Fatalf("Box.SweepRemoved: %v", err)
	}
	names := dirNames(t, h.BoxesDir())
	slices.Sort(names)
	if want := []string{nested, web2, "web"}; !slices.Equal(names, want) {
		t.Errorf("after Box.SweepRemoved the boxes dir holds %q, want %q", names, want)
	}

	if err := h.SweepRemoved(); err != nil {
		t.Fatalf("Home.SweepRemoved: %v", err)
	}
	if names := dirNames(t, h.BoxesDir()); !slices.Equal(names, []string{"web"}) {
		t.Errorf("after Home.SweepRemoved the boxes dir holds %q, want [web]", names)
	}
}

// What a sweep cannot delete is named in its error, with the cause, and
// the error of a box's sweep says, as a failed removal's does, when it is
// tried again.
func TestSweepRemovedSaysWhatIsLeft(t *testing.T) {
	h, web := newBox(t, "web")
	const tomb = ".web.removed-0123456789abcdef"
	makeTombstones(t, h, tomb)
	path := filepath.Join(h.BoxesDir(), tomb)
	stuck := errors.New("operation not permitted")
	removeAll = func(string) error { return stuck }
	t.Cleanup(func() { removeAll = os.RemoveAll })

	for name, err := range map[string]error{"Home": h.SweepRemoved(), "Box": web.SweepRemoved()} {
		if !errors.Is(err, stuck) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s.SweepRemoved = %v, want the cause and %s", name, err, path)
		}
	}
	if err := web.SweepRemoved(); !strings.Contains(err.Error(), "deleted when the box is removed again or a supervisor next opens the home") {
		t.Errorf("Box.SweepRemoved = %v, want it to say when the files are deleted", err)
	}
}
