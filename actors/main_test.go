package actors_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/internal/testutil"
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
	shimBinary, err = testutil.BuildShim(dir, false)
	if err != nil {
		_ = os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	actors.SetTestShim(shimBinary)
	code := m.Run()
	if code == 0 {
		if err := testutil.LeaksAfterGrace(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left behind:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
