package actors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A shim that predates --capabilities is never offered restarts in place,
// and the supervisor says so once per binary: a stale build looks just
// like an old shim, and silently losing the feature misled a new user.
func TestALegacyShimIsWarnedAboutOnce(t *testing.T) {
	t.Parallel()
	ts := newTestSup(t)
	old := filepath.Join(t.TempDir(), "old-shim")
	if err := os.WriteFile(old, []byte("#!/bin/sh\necho 'usage: want exactly the arguments --box-id ID' >&2\nexit 125\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if ts.sup.core.honoursRestartInPlace(old) {
			t.Fatal("a legacy shim was offered restarts in place")
		}
	}
	if n := strings.Count(ts.log.String(), "answers no --capabilities"); n != 1 {
		t.Fatalf("warned %d times, want once:\n%s", n, ts.log.String())
	}
	if !ts.sup.core.honoursRestartInPlace(testShim) {
		t.Fatal("the reference shim is not offered restarts in place")
	}
}
