package shimproc

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/layout"
)

// latencyRounds is how many samples each figure takes.
const latencyRounds = 50

// percentiles returns the median and p99 of samples.
func percentiles(samples []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// TestLatencyFigures measures and logs (never asserts: the machine may be
// slow) what the design cares about:
//
//   - spawn → ready of the reference shim running /bin/sleep;
//   - KillTree → Exited closed (shim SIGKILLed, reaped) for that box;
//   - Signal(SIGTERM) → Exited closed (graceful: the shim stops the guest,
//     writes exit.json and exits);
//   - the floor: SIGKILL → Exited for a plain /bin/sleep child watched
//     through the same pidfd/netpoller path.
//
// Run: go test -run TestLatencyFigures -v -count=1 ./shimproc/
func TestLatencyFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("latency figures are not measured in -short mode")
	}
	var ready, killed, stopped, floor []time.Duration
	for i := range 2 * latencyRounds {
		box := newBox(t, "lat")
		began := time.Now()
		h, err := Spawn(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff})
		if err != nil {
			t.Fatal(err)
		}
		ready = append(ready, time.Since(began))
		began = time.Now()
		if i%2 == 0 {
			err = h.KillTree()
		} else {
			err = h.Signal(syscall.SIGTERM)
		}
		if err != nil {
			t.Fatal(err)
		}
		waitExited(t, h, 10*time.Second)
		if i%2 == 0 {
			killed = append(killed, time.Since(began))
		} else {
			stopped = append(stopped, time.Since(began))
		}
		cleanupHandle(t, h)
	}
	for range latencyRounds {
		child := startChild(t, "/bin/sleep", "30")
		id, err := ReadIdentity(child.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		h, err := Adopt(box0(t), id, AdoptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = child.Process.Release() // the handle reaps it
		began := time.Now()
		if err := h.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitExited(t, h, 10*time.Second)
		floor = append(floor, time.Since(began))
		cleanupHandle(t, h)
	}
	for _, f := range []struct {
		name    string
		samples []time.Duration
	}{
		{"spawn → ready (boxsup-shim + /bin/sleep)", ready},
		{"KillTree → Exited (shim SIGKILLed, reaped)", killed},
		{"Signal(SIGTERM) → Exited (graceful, exit.json)", stopped},
		{"floor: SIGKILL → Exited (/bin/sleep child)", floor},
	} {
		p50, p99 := percentiles(f.samples)
		t.Logf("%-50s n=%d p50=%v p99=%v", f.name, len(f.samples), p50, p99)
	}
}

// box0 is a throwaway box for handles that need one.
func box0(t *testing.T) layout.Box {
	t.Helper()
	return newBox(t, "floor")
}
