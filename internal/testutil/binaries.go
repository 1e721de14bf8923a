// Package testutil is test support shared by the project's test packages:
// it builds the binaries under test (the reference shim, the CLI) and offers
// small helpers such as a goroutine-safe output buffer. It is internal: test
// support, not API.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// ShimPackage is the import path of the reference shim's main package.
const ShimPackage = "github.com/boxsup/boxsup/cmd/boxsup-shim"

// ModuleRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func ModuleRoot() (string, error) {
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

// Build compiles package pkg (an import path) into out from the module root.
// With race set the binary gets the race detector too, so that a test run
// under -race also checks the child processes it starts.
func Build(out, pkg string, race bool) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %v\n%s", args, err, b)
	}
	return nil
}

// BuildShim compiles the reference shim into dir and returns its path.
func BuildShim(dir string, race bool) (string, error) {
	out := filepath.Join(dir, "boxsup-shim")
	if err := Build(out, ShimPackage, race); err != nil {
		return "", fmt.Errorf("building the reference shim: %w", err)
	}
	return out, nil
}

// goTool finds the go command: on PATH, else in the GOROOT the test binary
// was built with.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
