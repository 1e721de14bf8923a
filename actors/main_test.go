package actors_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// shimBinary is the reference shim built for this package's tests and
// examples (the examples cannot build it themselves).
var shimBinary string

// TestMain builds cmd/boxsup-shim into a temporary directory, runs the tests
// and examples, and checks that they left no goroutine behind.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "boxsup-actors-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	shimBinary, err = buildShim(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// buildShim compiles the reference shim into dir, from the module root
// (found by walking up from the package directory to go.mod).
func buildShim(dir string) (string, error) {
	root, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("no go.mod above the package directory")
		}
		root = parent
	}
	out := filepath.Join(dir, "boxsup-shim")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/boxsup-shim")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the reference shim: %v\n%s", err, b)
	}
	return out, nil
}
