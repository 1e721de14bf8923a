package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every interval until it holds, and fails t (Fatalf,
// naming what) once within has passed without it. It waits for a condition
// the test can observe, never for an order of events it cannot: a test that
// needs an order forces it with a hook.
func Eventually(t testing.TB, within, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(interval)
	}
}
