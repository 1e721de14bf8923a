package testutil

import (
	"os"
	"testing"
)

// RequireRoot skips the test unless it runs as root; why says what the test
// needs root for ("chowns files to another user"), for the skip message.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}
