package actors_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

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
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}
