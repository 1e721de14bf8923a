package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// warmIterations are run before the recorded ones of a latency row.
const warmIterations = 3

// opTimeout bounds one operation of a latency row.
const opTimeout = 10 * time.Second

// startStopRows measures rows 1 (start→ready), 2 (cooperative stop) and 2b
// (boxlite's stop), interleaving boxsup and the floor so that both see the
// same machine.
func (r *runner) startStopRows(ctx context.Context) ([]Row, error) {
	spec, err := sleeperSpec()
	if err != nil {
		return nil, err
	}
	sup, err := r.newSupervisor(r.newHome("startstop"))
	if err != nil {
		return nil, err
	}
	defer stopAll(sup)
	rawDir := filepath.Join(r.root, "raw-startstop")
	n := r.cfg.Iterations
	r.progress("rows 1–2: %d start/stop cycles each for boxsup, the floor and boxlite's stop", n)

	var supStart, supStop, rawStart, rawStop, blStop []time.Duration
	for i := range n + warmIterations {
		record := i >= warmIterations
		boxsup := func() error {
			s, t, err := boxsupStartStop(ctx, sup, spec, fmt.Sprintf("s%05d", i))
			if err == nil && record {
				supStart, supStop = append(supStart, s), append(supStop, t)
			}
			return err
		}
		floor := func() error {
			s, t, err := rawStartStop(r.cfg.Shim, filepath.Join(rawDir, fmt.Sprintf("r%05d", i)), spec)
			if err == nil && record {
				rawStart, rawStop = append(rawStart, s), append(rawStop, t)
			}
			return err
		}
		boxlite := func() error {
			s, t, err := rawStartBoxliteStop(r.cfg.Shim, filepath.Join(rawDir, fmt.Sprintf("b%05d", i)), spec)
			if err == nil && record {
				rawStart, blStop = append(rawStart, s), append(blStop, t)
			}
			return err
		}
		steps := []func() error{boxsup, floor, boxlite}
		if i%2 == 1 {
			steps = []func() error{floor, boxlite, boxsup}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, fmt.Errorf("iteration %d: %w", i, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	_ = os.RemoveAll(rawDir)

	fs, ss := Summarize(rawStart), Summarize(supStart)
	r.startFloor = &fs
	floorStart := durationValue(fs)
	row1 := Row{
		ID: "1", Operation: "start→ready, one box (shim running sleep)", Unit: "ms",
		Floor:     &floorStart,
		FloorDesc: "the same shim started with plain os/exec and the same spec (stdin, fd 3 ready pipe, fd 4 keepalive, shim.log), until its ready byte",
		Boxsup:    durationValue(ss),
		Target:    "p50 ≤ 1.5× floor",
	}
	row1.judge(func(r *Row) bool { return r.Boxsup.P50 <= 1.5*r.Floor.P50 })

	floorStop := durationValue(Summarize(rawStop))
	row2 := Row{
		ID: "2", Operation: "stop, cooperative box (Stop reply received)", Unit: "ms",
		Floor:     &floorStop,
		FloorDesc: "SIGTERM through a pidfd to the same raw shim until the pidfd reports the exit",
		Boxsup:    durationValue(Summarize(supStop)),
		Target:    "p50 ≤ floor + 1 ms, p99 ≤ floor p99 + 2 ms",
	}
	row2.judge(func(r *Row) bool {
		return r.Boxsup.P50 <= r.Floor.P50+1 && r.Boxsup.P99 <= r.Floor.P99+2
	})

	bl := durationValue(Summarize(blStop))
	row2b := Row{
		ID: "2b", Operation: "stop, cooperative box — boxlite's method, re-created (SIGTERM, try_wait every 50 ms, SIGKILL at 2 s); values are boxlite's", Unit: "ms",
		Floor:     &floorStop,
		FloorDesc: row2.FloorDesc,
		Boxsup:    bl,
		Target:    "reference",
	}
	row2b.judge(nil)
	if row2.Boxsup.P50 > 0 {
		row2b.Note = fmt.Sprintf("boxlite p50 is %.1f× boxsup's p50 in the same run", bl.P50/row2.Boxsup.P50)
	}
	return []Row{row1, row2, row2b}, nil
}

// boxsupStartStop starts box id, stops it, and removes it; it returns the
// time of the Start and the Stop calls.
func boxsupStartStop(ctx context.Context, sup *actors.Supervisor, spec boxSpec, id string) (start, stop time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*opTimeout)
	defer cancel()
	t0 := time.Now()
	st, err := sup.Start(ctx, spec.startRequest(id, messages.RestartPolicy{}))
	start = time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("start %s: %w", id, err)
	}
	if st.State != messages.StateRunning {
		return 0, 0, fmt.Errorf("start %s: state %s, want running", id, st.State)
	}
	t1 := time.Now()
	st, err = sup.Stop(ctx, id, opTimeout)
	stop = time.Since(t1)
	if err != nil {
		return 0, 0, fmt.Errorf("stop %s: %w", id, err)
	}
	if st.State != messages.StateExited || st.Killed {
		return 0, 0, fmt.Errorf("stop %s: state %s killed=%v, want a graceful exit", id, st.State, st.Killed)
	}
	if _, err := sup.Remove(ctx, id, false); err != nil {
		return 0, 0, fmt.Errorf("remove %s: %w", id, err)
	}
	return start, stop, nil
}

// rawStartStop is the floor of rows 1 and 2: spawn until the ready byte,
// then SIGTERM through the pidfd until the pidfd reports the exit.
func rawStartStop(shim, dir string, spec boxSpec) (start, stop time.Duration, err error) {
	rs, start, release, err := readyRawShim(shim, dir, spec)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	t1 := time.Now()
	if err := rs.signal(syscall.SIGTERM); err != nil {
		return 0, 0, err
	}
	if err := rs.waitExit(opTimeout); err != nil {
		return 0, 0, err
	}
	return start, time.Since(t1), nil
}

// rawStartBoxliteStop spawns a raw shim until ready (another floor sample
// of row 1) and stops it the way boxlite does.
func rawStartBoxliteStop(shim, dir string, spec boxSpec) (start, stop time.Duration, err error) {
	rs, start, release, err := readyRawShim(shim, dir, spec)
	if err != nil {
		return 0, 0, err
	}
	defer release()
	stop, err = rs.boxliteStop()
	return start, stop, err
}
