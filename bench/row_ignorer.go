package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// ignorerTimeout is the stop timeout of row 3.
const ignorerTimeout = 100 * time.Millisecond

// ignorerRows measures row 3: Stop with a 100 ms timeout of a box whose
// guest ignores SIGTERM. boxsup's sample is the reply time minus the
// timeout; the floor is SIGKILL to the raw shim's process group until its
// pidfd reports the exit, which is the part of the kill no supervisor can
// avoid.
func (r *runner) ignorerRows(ctx context.Context) ([]Row, error) {
	spec, err := ignorerSpec()
	if err != nil {
		return nil, err
	}
	sup, err := r.newSupervisor(r.newHome("ignorer"))
	if err != nil {
		return nil, err
	}
	defer stopAll(sup)
	rawDir := filepath.Join(r.root, "raw-ignorer")
	n := max(r.cfg.Iterations/4, 10)
	r.progress("row 3: %d stops with a %v timeout of a SIGTERM-ignoring box, and as many raw kills", n, ignorerTimeout)

	var over, floor []time.Duration
	for i := range n + warmIterations {
		record := i >= warmIterations
		d, err := boxsupStopIgnorer(ctx, sup, spec, fmt.Sprintf("i%05d", i))
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i, err)
		}
		f, err := rawKill(r.cfg.Shim, filepath.Join(rawDir, fmt.Sprintf("k%05d", i)), spec)
		if err != nil {
			return nil, fmt.Errorf("iteration %d: raw: %w", i, err)
		}
		if record {
			over, floor = append(over, d), append(floor, f)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	_ = os.RemoveAll(rawDir)

	fv := durationValue(Summarize(floor))
	row := Row{
		ID: "3", Operation: fmt.Sprintf("stop, box ignoring SIGTERM, %v timeout: reply time minus the timeout", ignorerTimeout), Unit: "ms",
		Floor:     &fv,
		FloorDesc: "SIGKILL to the raw shim's process group until its pidfd reports the exit",
		Boxsup:    durationValue(Summarize(over)),
		Target:    "p99 ≤ 2 ms",
	}
	row.judge(func(r *Row) bool { return r.Boxsup.P99 <= 2 })
	return []Row{row}, nil
}

// boxsupStopIgnorer starts box id (untimed), stops it with ignorerTimeout and
// returns how long after the timeout the reply came; then removes the box.
func boxsupStopIgnorer(ctx context.Context, sup *actors.Supervisor, spec boxSpec, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*opTimeout)
	defer cancel()
	st, err := sup.Start(ctx, spec.startRequest(id, messages.RestartPolicy{}))
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", id, err)
	}
	if err := waitGuestIgnoresTERM(st.PID); err != nil {
		return 0, fmt.Errorf("box %s: %w", id, err)
	}
	t0 := time.Now()
	st, err = sup.Stop(ctx, id, ignorerTimeout)
	took := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("stop %s: %w", id, err)
	}
	if !st.Killed || st.State != messages.StateExited {
		return 0, fmt.Errorf("stop %s: state %s killed=%v, want killed after the timeout", id, st.State, st.Killed)
	}
	if _, err := sup.Remove(ctx, id, false); err != nil {
		return 0, fmt.Errorf("remove %s: %w", id, err)
	}
	return took - ignorerTimeout, nil
}

// rawKill spawns the SIGTERM-ignoring guest under a raw shim and times
// SIGKILL to its group until the pidfd reports the exit.
func rawKill(shim, dir string, spec boxSpec) (time.Duration, error) {
	rs, _, release, err := readyRawShim(shim, dir, spec)
	if err != nil {
		return 0, err
	}
	defer release()
	t0 := time.Now()
	if err := rs.killGroup(); err != nil {
		return 0, err
	}
	if err := rs.waitExit(opTimeout); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// waitGuestIgnoresTERM waits until the shim's guest has run its trap and
// exec'd into sleep with SIGTERM ignored: readiness means "exec'd the
// shell", and a SIGTERM that lands before the trap would end the guest
// gracefully. It polls /proc (untimed) with a deadline.
func waitGuestIgnoresTERM(shimPID int) error {
	const sigtermBit = 1 << (15 - 1)
	deadline := time.Now().Add(opTimeout)
	for time.Now().Before(deadline) {
		kids, _ := childrenOf(shimPID)
		for _, kid := range kids {
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", kid))
			if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", kid))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
					mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
					if err == nil && mask&sigtermBit != 0 {
						return nil
					}
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("the guest of shim %d did not come to ignore SIGTERM within %v", shimPID, opTimeout)
}
