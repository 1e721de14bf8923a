package actors

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// stormBoxes is the size of the storms: enough that, unbounded, the exit
// watchers and cgroup removals blocked in the kernel at once made the
// supervisor create dozens of threads (1000 boxes: 40–150).
const stormBoxes = 200

// TestStopStormKeepsThreadsBounded starts and then stops many boxes at once
// and checks that the supervisor gained no more OS threads than its bounded
// pools of blocking work can hold. Go never gives a thread back, so the
// count after the storms is their high-water mark. Whether unbounded work
// would show depends on timing (the old code failed about 1 run in 3 here),
// so this is a guard, not the measure: bench row 7d counts the threads of a
// 1000-box storm. Not parallel: another test's blocked system calls would
// add threads of their own.
func TestStopStormKeepsThreadsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops 150 shims")
	}
	ts := newTestSup(t)
	ctx := ts.ctx()
	ids := make([]string, stormBoxes)
	for i := range ids {
		ids[i] = fmt.Sprintf("storm-%03d", i)
	}
	all := func(op func(id string) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(ids))
		for i, id := range ids {
			wg.Go(func() { errs[i] = op(id) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("box %s: %v", ids[i], err)
			}
		}
	}
	before := selfThreads(t)
	all(func(id string) error {
		_, err := ts.sup.Start(ctx, messages.StartBox{ID: id, Spec: spec("sleep", "3600")})
		return err
	})
	all(func(id string) error {
		_, err := ts.sup.Stop(ctx, id, testTimeout)
		return err
	})
	ts.sup.core.cgroupRemovals.Wait()
	after := selfThreads(t)
	// Each pool may hold one thread per slot in the kernel, and each P one
	// more running Go code; a few spare for the runtime's own.
	allowance := ioSlotCount() + cgroupRemovalSlots + max(4, 2*runtime.GOMAXPROCS(0)) + runtime.GOMAXPROCS(0) + 4
	if grown := after - before; grown > allowance {
		t.Errorf("starting and stopping %d boxes at once grew the supervisor from %d to %d OS threads (+%d, allowed +%d): some blocking work is not bounded",
			stormBoxes, before, after, grown, allowance)
	}
	t.Logf("threads: %d before the storms, %d after (allowed +%d)", before, after, allowance)
}

// selfThreads is this process's OS thread count (Threads in
// /proc/self/status).
func selfThreads(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}
