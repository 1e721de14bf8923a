package nodeloss

import (
	"math/rand"
	"testing"
	"time"
)

// TestNoTwoCopiesUnderRandomSchedules plays many partitions with random
// network delays and renewal timings through the real state machines, with
// etcd modelled as the issue describes (a lease expires TTL after the last
// renewal it received; a watcher learns of it some time later), and checks
// the claim of docs/CLUSTER.md: the old member has stopped its box (fence
// deadline plus FenceGrace) before any other member may start it.
func TestNoTwoCopiesUnderRandomSchedules(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(12))
	for _, tm := range []Timing{
		Timing{}.WithDefaults(),
		{LeaseTTL: 2 * s, FenceAfter: 3 * s, FailoverAfter: 5*s + time.Millisecond},
	} {
		if err := tm.Validate(); err != nil {
			t.Fatal(err)
		}
		for run := 0; run < 2000; run++ {
			t0 := time.Unix(1_000_000, 0)
			delay := func(max time.Duration) time.Duration { return time.Duration(rng.Int63n(int64(max) + 1)) }
			// Renewals every TTL/3 until the partition; each one reaches
			// etcd after a delay, and its answer may be lost.
			fence := NewFence(tm, t0.Add(tm.LeaseTTL))
			var etcdExpiry time.Time
			now := t0
			partition := t0.Add(delay(10 * tm.LeaseTTL))
			for ; now.Before(partition); now = now.Add(tm.LeaseTTL / 3) {
				received := now.Add(delay(tm.LeaseTTL / 4))
				if received.After(partition) {
					break // lost in the partition
				}
				etcdExpiry = received.Add(tm.LeaseTTL)
				if rng.Intn(4) != 0 { // the answer came back
					fence.Renewed(now.Add(tm.LeaseTTL))
				}
			}
			if etcdExpiry.IsZero() {
				etcdExpiry = t0.Add(tm.LeaseTTL) // the join's grant
			}
			// The old member ticks every 100 ms and fences at the deadline.
			var stoppedBy time.Time
			for tick := partition; stoppedBy.IsZero(); tick = tick.Add(100 * time.Millisecond) {
				if fence.Tick(tick) == StartFence {
					stoppedBy = tick.Add(tm.FenceGrace(time.Hour)) // the slowest stop
				}
			}
			// Another member sees the expiry some time after it happens and
			// re-places when Failover says so.
			fo := NewFailover(tm)
			seen := etcdExpiry.Add(delay(2 * tm.LeaseTTL))
			fo.Observe(7, false, seen)
			var started time.Time
			for tick := seen; started.IsZero(); tick = tick.Add(100 * time.Millisecond) {
				if v, _ := fo.Decide(7, true, tick); v == Replace {
					started = tick
				}
			}
			if !stoppedBy.Before(started) {
				t.Fatalf("timing %+v run %d: old copy stopped by +%v, new copy started at +%v",
					tm, run, stoppedBy.Sub(t0), started.Sub(t0))
			}
		}
	}
}
