package remoting

import (
	"fmt"
	"os"
	"testing"

	"github.com/boxsup/boxsup/internal/testutil"
)

// TestMain doubles as the main of the member and asker processes the tests
// start (see child_test.go): protoactor's remote.Start replaces gRPC's
// global logger, which races with any other remote already serving in the
// same process, so every peer but one runs in its own process, as members
// of a real cluster do.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	code := m.Run()
	stopParent()
	if code == 0 {
		if err := testutil.LeaksAfterGrace(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
