package testutil

import (
	"os/exec"
	"testing"
)

// StartChild starts name with args as a child of the test and returns it;
// Cleanup kills and reaps it, whatever the test did to it meanwhile.
func StartChild(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
