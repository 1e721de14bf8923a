package actors_test

import (
	"fmt"
	"os"
	"testing"
	"time"

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
	code := m.Run()
	if code == 0 {
		if err := leaksAfterGrace(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left behind:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// leakPollInterval is how often leaksAfterGrace looks again.
const leakPollInterval = 50 * time.Millisecond

// leaksAfterGrace runs goleak.Find until it passes or 3 s have passed:
// protoactor's dead-letter throttle (started by a late reply to a caller
// who gave up) sleeps a second before it ends by itself.
func leaksAfterGrace() error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := goleak.Find()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(leakPollInterval)
	}
}
