// Package tests holds boxsup's actor-level integration tests. They drive the
// public API only (actors.NewSupervisor and its methods, Subscribe, Root,
// the messages types) against the real reference shim, real processes and
// real signals, each test in a home of its own under t.TempDir().
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
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
	shimBinary, err = buildShim(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(settlingM{m}, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildShim compiles cmd/boxsup-shim into dir and returns the binary's path.
func buildShim(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "boxsup-shim")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/boxsup-shim")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the reference shim: %v\n%s", err, b)
	}
	return out, nil
}

// moduleRoot walks up from the working directory (the package directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// settlingM runs the tests and then gives goroutines on their way out
// (protoactor's 1 s dead-letter throttle timer) goroutineGrace to end, so
// that VerifyTestMain's own check only sees real leaks.
type settlingM struct{ m *testing.M }

func (s settlingM) Run() int {
	code := s.m.Run()
	_ = findLeaks()
	return code
}
