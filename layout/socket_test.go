package layout

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
	// under /tmp, as the runtime dir here is no shorter than real.)
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

func TestSocketDirRefusesSquattedParent(t *testing.T) {
	real := longDir(t)
	for name, squat := range map[string]func(t *testing.T, parent string){
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
			mustMkdir(t, parent)
			if err := os.Chown(parent, 54321, 54321); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			runtime := t.TempDir()
			t.Setenv("XDG_RUNTIME_DIR", runtime)
			parent := runtimeParent(runtime)
			squat(t, parent)
			before, _ := os.Lstat(parent)
			got, err := SocketDir(real, "ready.sock")
			if err == nil {
				t.Fatalf("SocketDir accepted a squatted parent and returned %q", got)
			}
			if !strings.Contains(err.Error(), parent) {
				t.Errorf("error %q does not name %s", err, parent)
			}
			after, _ := os.Lstat(parent)
			if before.Mode() != after.Mode() {
				t.Errorf("the squatted parent's mode changed from %v to %v", before.Mode(), after.Mode())
			}
			if before.IsDir() {
				if names := dirNames(t, parent); len(names) != 0 {
					t.Errorf("SocketDir created %v inside the squatted parent", names)
				}
			}
			// RemoveSocketDir leaves a parent it does not trust alone.
			if err := RemoveSocketDir(real); err != nil {
				t.Errorf("RemoveSocketDir: %v", err)
			}
			if _, err := os.Lstat(parent); err != nil {
				t.Errorf("RemoveSocketDir touched the squatted parent: %v", err)
			}
		})
	}
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

func TestRuntimeBases(t *testing.T) {
	runtime := t.TempDir()
	for value, want := range map[string][]string{
		runtime:                           {runtime, "/tmp"},
		"":                                {"/tmp"},
		"relative":                        {"/tmp"},
		filepath.Join(runtime, "missing"): {"/tmp"},
		"/tmp":                            {"/tmp"},
	} {
		t.Setenv("XDG_RUNTIME_DIR", value)
		got := runtimeBases()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("XDG_RUNTIME_DIR=%q: runtimeBases = %q, want %q", value, got, want)
		}
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
