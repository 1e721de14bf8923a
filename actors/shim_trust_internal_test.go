package actors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// nobodyUID is the uid tests give what "another user" planted.
const nobodyUID = 65534

// plantShim writes a boxsup-shim script into a fresh 0755 directory; the
// script copies its stdin (the spec, secrets included) to stolen.
func plantShim(t *testing.T, stolen string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, ShimBinaryName)
	if err := os.WriteFile(p, []byte("#!/bin/sh\ncat > "+stolen+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustChmod(t *testing.T, path string, mode uint32) {
	t.Helper()
	if err := syscall.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// wantShimRefused fails unless err is ErrShimNotFound naming each mention.
func wantShimRefused(t *testing.T, what string, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, messages.ErrShimNotFound) {
		t.Fatalf("%s: err = %v, want ErrShimNotFound", what, err)
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: error %q does not mention %q", what, err, m)
		}
	}
}

// TestFindShimSkipsUntrustedCandidates: on PATH, a boxsup-shim that
// another user could write or replace (the file, or its directory, writable
// by others; the file owned by nobody) is skipped for the next one; when
// none passes, the error names each one skipped and why. Not parallel: it
// sets PATH.
func TestFindShimSkipsUntrustedCandidates(t *testing.T) {
	stolen := filepath.Join(t.TempDir(), "stolen")
	writable := plantShim(t, stolen) // the file 0777
	mustChmod(t, writable, 0o777)
	openDir := plantShim(t, stolen) // a user-writable PATH entry
	mustChmod(t, filepath.Dir(openDir), 0o777)
	bad := []string{writable, openDir}
	if os.Geteuid() == 0 {
		owned := plantShim(t, stolen)
		if err := os.Chown(owned, nobodyUID, nobodyUID); err != nil {
			t.Fatal(err)
		}
		bad = append(bad, owned)
	}
	good := plantShim(t, stolen)
	var dirs []string
	for _, p := range bad {
		dirs = append(dirs, filepath.Dir(p))
	}

	t.Setenv("PATH", strings.Join(append(append([]string{"."}, dirs...), filepath.Dir(good)), string(filepath.ListSeparator)))
	got, err := FindShim()
	if err != nil || got != good {
		t.Errorf("FindShim() = %q, %v; want the trusted %s after the untrusted ones", got, err, good)
	}

	t.Setenv("PATH", strings.Join(dirs, string(filepath.ListSeparator)))
	got, err = FindShim()
	if got != "" {
		t.Errorf("FindShim() = %q with only untrusted candidates", got)
	}
	wantShimRefused(t, "only untrusted candidates", err, append([]string{"skipped", "chmod go-w " + filepath.Dir(openDir)}, bad...)...)
}

// TestStartRefusesAnUntrustedShim: a Config.ShimBinary (--shim) that
// others can write is refused at Start, before it runs and before the box
// exists: the secret is not stolen.
func TestStartRefusesAnUntrustedShim(t *testing.T) {
	t.Parallel()
	stolen := filepath.Join(t.TempDir(), "stolen")
	shim := plantShim(t, stolen)
	mustChmod(t, shim, 0o777)
	ts := newTestSup(t, func(c *Config) { c.ShimBinary = shim })
	s := spec("/bin/sleep", "30")
	s.Secrets = []messages.SecretVar{{Name: "TOK", Value: messages.NewSecret("secret-sentinel-5d2e")}}
	_, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "victim", Spec: s})
	if b, rerr := os.ReadFile(stolen); rerr == nil {
		t.Errorf("the untrusted shim ran and got the spec:\n%s", b)
	}
	wantShimRefused(t, "Start", err, shim, "0777", "chmod go-w "+shim)
	if box, _ := ts.sup.core.home.Box("victim"); box.Exists() {
		t.Error("a refused start left its directory")
	}
}

// TestStartSaysWhyNoShimWasFound: with no Config.ShimBinary and only an
// untrusted boxsup-shim on PATH, Start fails before the box exists, and
// its ErrShimNotFound says which was refused and why, rather than only
// that none was found. Not parallel: it sets PATH.
func TestStartSaysWhyNoShimWasFound(t *testing.T) {
	stolen := filepath.Join(t.TempDir(), "stolen")
	shim := plantShim(t, stolen)
	mustChmod(t, filepath.Dir(shim), 0o777)
	t.Setenv("PATH", filepath.Dir(shim))
	ts := newTestSup(t, func(c *Config) { c.ShimBinary = "" })
	_, err := ts.sup.Start(ts.ctx(), messages.StartBox{ID: "victim", Spec: spec("/bin/sleep", "30")})
	wantShimRefused(t, "Start", err, shim, "chmod go-w "+filepath.Dir(shim))
	if _, rerr := os.Stat(stolen); rerr == nil {
		t.Error("the untrusted shim ran")
	}
	if box, _ := ts.sup.core.home.Box("victim"); box.Exists() {
		t.Error("a refused start left its directory")
	}
}
