package layout

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// failingMarshaler cannot be encoded.
type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) { return nil, errors.New("cannot encode") }

func TestWriteJSONRoundTripAndMode(t *testing.T) {
	for _, tc := range []struct {
		umask int
		perm  os.FileMode
		want  os.FileMode
	}{
		{0o000, 0o600, 0o600}, // a lax umask does not widen it
		{0o277, 0o600, 0o600}, // a strict umask does not narrow it
		{0o022, 0o640, 0o640},
		{0o022, 0, 0o600}, // 0 means 0600
		{0o022, os.ModeSetuid | 0o600, 0o600},
	} {
		t.Run(fmt.Sprintf("umask%04o-perm%04o", tc.umask, tc.perm), func(t *testing.T) {
			withUmask(t, tc.umask)
			dir := t.TempDir()
			path := filepath.Join(dir, "x.json")
			in := sample{Name: "a", Count: 3}
			if err := WriteJSON(path, in, tc.perm); err != nil {
				t.Fatalf("WriteJSON: %v", err)
			}
			assertMode(t, path, tc.want)
			var out sample
			if err := ReadJSON(path, &out); err != nil {
				t.Fatalf("ReadJSON: %v", err)
			}
			if out != in {
				t.Errorf("read back %+v, want %+v", out, in)
			}
			assertNoTempFiles(t, dir)
		})
	}
}

func TestWriteJSONReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	for i := range 3 {
		if err := WriteJSON(path, sample{Count: i}, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out sample
	if err := ReadJSON(path, &out); err != nil || out.Count != 2 {
		t.Fatalf("ReadJSON = %+v, %v; want the last write", out, err)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("dir holds %v, want only x.json", names)
	}
}

// A failed write leaves the old file as it was and no temporary file.
func TestWriteJSONFailureLeavesOldFileAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	if err := WriteJSON(path, sample{Name: "old"}, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"channel":   make(chan int),
		"func":      func() {},
		"marshaler": failingMarshaler{},
		"nested":    map[string]any{"ok": 1, "bad": failingMarshaler{}},
	} {
		if err := WriteJSON(path, v, 0o600); err == nil {
			t.Errorf("%s: WriteJSON succeeded", name)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, old) {
			t.Errorf("%s: the old file changed to %q", name, now)
		}
		assertNoTempFiles(t, dir)
	}
}

// When the rename fails (the target is a non-empty directory) the temporary
// file, already written, is removed.
func TestWriteJSONRenameFailureRemovesTemp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "x.json")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSON(target, sample{}, 0o600); err == nil {
		t.Fatal("WriteJSON over a non-empty directory succeeded")
	}
	assertNoTempFiles(t, dir)
	if fi, err := os.Stat(filepath.Join(target, "child")); err != nil || !fi.IsDir() {
		t.Errorf("the directory in the way was disturbed: %v", err)
	}
}

func TestWriteJSONReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; the rename-failure test covers cleanup")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	if err := WriteJSON(path, sample{Name: "old"}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := WriteJSON(path, sample{Name: "new"}, 0o600); err == nil {
		t.Fatal("WriteJSON into a read-only directory succeeded")
	}
	var out sample
	if err := ReadJSON(path, &out); err != nil || out.Name != "old" {
		t.Errorf("old file = %+v, %v; want it intact", out, err)
	}
	assertNoTempFiles(t, dir)
}

func TestWriteJSONMissingDir(t *testing.T) {
	dir := t.TempDir()
	err := WriteJSON(filepath.Join(dir, "missing", "x.json"), sample{}, 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteJSON into a missing dir = %v, want ErrNotExist", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left %v behind", names)
	}
}

func TestReadJSONMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.json")
	var out sample
	err := ReadJSON(path, &out)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadJSON(missing) = %v, want fs.ErrNotExist", err)
	}
	if errors.Is(err, messages.ErrCorruptFile) {
		t.Error("a missing file must not read as corrupt")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
}

// Corrupt files are reported as ErrCorruptFile naming the path and are left
// exactly as they were.
func TestReadJSONCorrupt(t *testing.T) {
	full := `{"name":"a","count":3}`
	for name, content := range map[string]string{
		"empty":          "",
		"truncated":      full[:len(full)/2],
		"cut at a quote": `{"name":"a`,
		"garbage":        "\x00\x01not json",
		"trailing":       full + " }",
		"wrong type":     `{"count":"three"}`,
		"whitespace":     "  \n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			past := time.Now().Add(-time.Hour).Truncate(time.Second)
			if err := os.Chtimes(path, past, past); err != nil {
				t.Fatal(err)
			}
			var out sample
			err := ReadJSON(path, &out)
			if !errors.Is(err, messages.ErrCorruptFile) {
				t.Fatalf("ReadJSON = %v, want ErrCorruptFile", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the path", err)
			}
			assertUntouched(t, path, content, past)
		})
	}
}

// assertUntouched fails unless path still holds content with mtime at.
func assertUntouched(t *testing.T, path, content string, at time.Time) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("file gone: %v", err)
	}
	if string(b) != content {
		t.Errorf("file changed to %q", b)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(at) {
		t.Errorf("file mtime changed from %v to %v", at, fi.ModTime())
	}
}

// Readers racing a writer see the old or the new file, never a partial one.
func TestWriteJSONConcurrentReadersSeeWholeFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	big := strings.Repeat("x", 64<<10) // larger than one write of a pipe page
	if err := WriteJSON(path, sample{Name: big}, 0o600); err != nil {
		t.Fatal(err)
	}
	const writers, writes = 3, 30
	var wg sync.WaitGroup
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var out sample
			if err := ReadJSON(path, &out); err != nil {
				readErr <- err
				return
			}
			if out.Name != big {
				readErr <- fmt.Errorf("read a name of %d bytes", len(out.Name))
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				if err := WriteJSON(path, sample{Name: big, Count: w*writes + i}, 0o600); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatalf("a reader saw a partial file: %v", err)
	}
	assertNoTempFiles(t, dir)
}

func TestWriteJSONVolatileReplacesAtomicallyWithExactMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for i := 0; i < 3; i++ {
		if err := WriteJSONVolatile(p, map[string]int{"n": i}, 0o600); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	var got map[string]int
	if err := ReadJSON(p, &got); err != nil || got["n"] != 2 {
		t.Fatalf("read back %v, %v; want n=2", got, err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only state.json (no temp file)", len(entries))
	}
}
