package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// adoptRows measures row 6: Boxes detached boxes are started by one
// Supervisor, which is then shut down leaving them running; in each round a
// new Supervisor opens the home and the clock runs until List shows every
// box running. The floor is the work a verified adoption cannot skip, done
// sequentially: read state.json, pidfd_open the recorded PID, read its start
// time from /proc/PID/stat and compare.
func (r *runner) adoptRows(ctx context.Context) ([]Row, error) {
	spec, err := sleeperSpec()
	if err != nil {
		return nil, err
	}
	spec.detach = true
	n := r.cfg.Boxes
	home := r.newHome("adopt")
	first, err := r.newSupervisor(home)
	if err != nil {
		return nil, err
	}
	defer stopAll(first)
	r.progress("row 6: starting %d detached boxes", n)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	took, errs := parallel(n, func(i int) error {
		_, err := first.Start(sctx, spec.startRequest(fmt.Sprintf("d%05d", i), messages.RestartPolicy{}))
		return err
	})
	if err := firstErrors(errs); err != nil {
		return nil, fmt.Errorf("starting %d detached boxes: %w", n, err)
	}
	r.progress("row 6: %d detached boxes started in %v; adopting them %d times", n, took.Round(time.Millisecond), r.cfg.Rounds)
	if err := first.Shutdown(sctx, actors.LeaveRunning); err != nil {
		return nil, fmt.Errorf("leaving the boxes running: %w", err)
	}

	var supD, rawD []time.Duration
	var last *actors.Supervisor
	defer func() {
		if last != nil {
			_ = stopAll(last)
		}
	}()
	for round := range r.cfg.Rounds {
		f, err := rawAdopt(home)
		if err != nil {
			return nil, fmt.Errorf("round %d: raw adoption: %w", round, err)
		}
		if f.found != n {
			return nil, fmt.Errorf("round %d: raw adoption verified %d of %d boxes", round, f.found, n)
		}
		t0 := time.Now()
		sup, err := r.newSupervisor(home)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		last = sup
		if err := waitAllRunning(sctx, sup, n); err != nil {
			return nil, fmt.Errorf("round %d: %w", round, err)
		}
		supD, rawD = append(supD, time.Since(t0)), append(rawD, f.took)
		if round < r.cfg.Rounds-1 {
			if err := sup.Shutdown(sctx, actors.LeaveRunning); err != nil {
				return nil, fmt.Errorf("round %d: leaving the boxes running: %w", round, err)
			}
			last = nil
		}
	}
	if last != nil {
		if err := stopAll(last); err != nil {
			return nil, fmt.Errorf("stopping the adopted boxes: %w", err)
		}
		last = nil
	}

	target := scaleTarget(500*time.Millisecond, n)
	fv := roundsValue(rawD)
	row := Row{
		ID: "6", Operation: fmt.Sprintf("adopt-on-boot: new Supervisor on a home with %d detached running boxes, until List shows all running", n), Unit: "ms",
		Floor:     &fv,
		FloorDesc: "per box, sequentially: read state.json, pidfd_open the recorded PID, read its start time from /proc/PID/stat and compare",
		Boxsup:    roundsValue(supD),
		Target:    fmt.Sprintf("p50 ≤ %v (500 ms per 1000)", target),
		Note:      fmt.Sprintf("p50 is the median, p99 the worst of %d rounds; starting the %d detached boxes took %v", r.cfg.Rounds, n, took.Round(time.Millisecond)),
	}
	row.judge(func(r *Row) bool { return r.Boxsup.P50 <= ms(target) })
	row.noteFloorAbove(ms(target))
	return []Row{row}, nil
}

// waitAllRunning polls List until n boxes are running.
func waitAllRunning(ctx context.Context, sup *actors.Supervisor, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := sup.List(ctx, actors.ListOptions{})
		if err != nil {
			return err
		}
		running := 0
		for _, st := range list {
			if st.State == messages.StateRunning {
				running++
			}
		}
		if running == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("List shows %d of %d boxes running after a minute", running, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// rawAdoptResult is one sequential floor sweep of row 6.
type rawAdoptResult struct {
	took  time.Duration
	found int
}

// rawAdopt verifies every box of home the cheapest correct way.
func rawAdopt(home string) (rawAdoptResult, error) {
	var res rawAdoptResult
	boxes := filepath.Join(home, "boxes")
	buf := make([]byte, 4096)
	t0 := time.Now()
	entries, err := os.ReadDir(boxes)
	if err != nil {
		return res, err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(boxes, e.Name(), "state.json"))
		if err != nil {
			continue
		}
		var rec messages.StateRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Identity.Zero() {
			continue
		}
		fd, err := unix.PidfdOpen(rec.Identity.PID, unix.PIDFD_NONBLOCK)
		if err != nil {
			continue
		}
		s, err := readProcSample(rec.Identity.PID, buf)
		if err == nil && s.startTime == rec.Identity.StartTime {
			res.found++
		}
		_ = unix.Close(fd)
	}
	res.took = time.Since(t0)
	return res, nil
}
