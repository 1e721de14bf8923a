package shim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/internal/testutil"
)

// shimBinary is the boxsup-shim built once for the whole package by TestMain.
var shimBinary string

// TestMain runs a guest helper when the test binary is re-executed as a
// box's guest (see helpers_test.go); otherwise it builds the real
// boxsup-shim binary, which every test drives as a child process, runs the
// tests and checks for leaked goroutines.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "boxsup-shim-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(2)
	}
	shimBinary = filepath.Join(dir, "boxsup-shim")
	if err := testutil.Build(shimBinary, testutil.ShimPackage, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}
