// Package tests holds boxsup's actor-level integration tests. They drive the
// public API only (actors.NewSupervisor and its methods, Subscribe, Root,
// the messages types) against the real reference shim, real processes and
// real signals, each test in a home of its own under t.TempDir().
package tests

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/internal/testutil"
)

// shimBinary is the reference shim built once for the whole package.
var shimBinary string

// TestMain builds the reference shim, runs the tests and then checks that no
// goroutine outlived them. Started with BOXSUP_TEST_CHILD set, the test
// binary instead plays a short-lived supervisor process (see child_test.go).
func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	dir, err := os.MkdirTemp("", "boxsup-tests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the build directory:", err)
		os.Exit(2)
	}
	shimBinary, err = testutil.BuildShim(dir, false)
	if err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(testutil.Settling(m), goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}
