package nodeloss

import (
	"testing"
	"time"
)

func TestFailoverDecide(t *testing.T) {
	t.Parallel()
	tm := Timing{LeaseTTL: 3 * s, FenceAfter: 10 * s, FailoverAfter: 20 * s}
	t0 := time.Unix(1_000_000, 0)
	f := NewFailover(tm)

	check := func(lease int64, eligible bool, at time.Duration, want Verdict, wantGone time.Duration) {
		t.Helper()
		v, gone := f.Decide(lease, eligible, t0.Add(at))
		if v != want || gone != wantGone {
			t.Fatalf("Decide(%d, %v, +%v) = %s %v; want %s %v", lease, eligible, at, v, gone, want, wantGone)
		}
	}
	check(1, true, 0, Unknown, 0) // never observed: decide nothing
	f.Observe(1, true, t0)
	check(1, true, 0, Alive, 0)
	f.Observe(1, false, t0.Add(5*s))
	f.Observe(1, false, t0.Add(9*s)) // a later reading does not restart the delay
	check(1, true, 10*s, Wait, 5*s)
	check(1, false, 10*s, Unknown, 5*s) // not eligible: unknown for ever
	check(1, true, 25*s, Wait, 20*s)    // not before the delay has strictly passed
	check(1, true, 25*s+1, Replace, 20*s+1)
	check(1, false, 90*s, Unknown, 85*s)
	f.Forget(1)
	check(1, true, 90*s, Unknown, 0)
}
