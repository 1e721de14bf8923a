package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/internal/testutil"
)

// binDir holds the boxsup and boxsup-shim binaries built for the package;
// boxsup finds the shim beside itself.
var binDir, boxsupBin, shimBin string

// TestMain builds both binaries once (with the race detector when the tests
// have it, so the members are checked too), runs the tests and checks that
// no goroutine outlived them. Run as a child (childEnv set), the test
// binary is a cluster client instead (requests_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	dir, err := os.MkdirTemp("", "boxsup-cluster-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = os.Chmod(dir, 0o755)
	binDir, boxsupBin, shimBin = dir, filepath.Join(dir, "boxsup"), filepath.Join(dir, "boxsup-shim")
	for pkg, out := range map[string]string{
		"github.com/boxsup/boxsup/cmd/boxsup":      boxsupBin,
		"github.com/boxsup/boxsup/cmd/boxsup-shim": shimBin,
	} {
		if err := testutil.Build(out, pkg, raceEnabled); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
			_ = os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	if raceEnabled && os.Getenv("GORACE") == "" {
		// A race-enabled program sleeps 1 s at exit by default; a detected
		// race still makes it exit 66, which fails the test.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	goleak.VerifyTestMain(testutil.Settling(m), goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}
