package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// metricsSamples is how many MetricsAll calls (and floor sweeps) row 5 times
// after one warm-up each.
const metricsSamples = 10

// scaleStopTimeout is the stop timeout of each box of the storm: long
// enough that every shim exits gracefully, as the floor's do. A thousand
// shims exiting at once take seconds on 2 cores (each sweeps /proc and
// writes its exit.json; see docs/PERFORMANCE.md).
const scaleStopTimeout = time.Minute

// costSettle lets goroutines of the start storm finish before row 7 counts.
const costSettle = 300 * time.Millisecond

// scaleTarget scales a target given for 1000 boxes to n boxes.
func scaleTarget(per1000 time.Duration, n int) time.Duration {
	return per1000 * time.Duration(n) / 1000
}

// scaleRows measures rows 4 (start and stop Boxes boxes at once), 5
// (MetricsAll over them) and 7 (supervisor cost per box), in Rounds rounds
// that alternate which of boxsup and the floor goes first. Rows 5 and 7 are
// measured in the first round, in which boxsup goes first: row 7's thread
// count then comes from a process that has run nothing else yet.
func (r *runner) scaleRows(ctx context.Context) ([]Row, error) {
	spec, err := sleeperSpec()
	if err != nil {
		return nil, err
	}
	n := r.cfg.Boxes
	var supStart, supStop, rawStart, rawStop []time.Duration
	var metricsRows, costRows []Row
	var failed error
rounds:
	for round := range r.cfg.Rounds {
		r.progress("rows 4–5–7, round %d/%d: %d boxes", round+1, r.cfg.Rounds, n)
		boxsup := func() error {
			res, err := r.boxsupScale(ctx, spec, round)
			if res.start > 0 {
				supStart = append(supStart, res.start)
			}
			if res.stop > 0 {
				supStop = append(supStop, res.stop)
			}
			if round == 0 {
				metricsRows, costRows = res.metrics, res.cost
			}
			return err
		}
		floor := func() error {
			s, t, err := r.rawScale(spec, round)
			if err != nil {
				return fmt.Errorf("raw: %w", err)
			}
			rawStart, rawStop = append(rawStart, s), append(rawStop, t)
			return nil
		}
		steps := []func() error{boxsup, floor}
		if round%2 == 1 {
			steps = []func() error{floor, boxsup}
		}
		for _, step := range steps {
			err := step()
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				failed = fmt.Errorf("round %d: %w", round, err)
				break rounds
			}
		}
	}

	startTarget, stopTarget := scaleTarget(1500*time.Millisecond, n), scaleTarget(400*time.Millisecond, n)
	fStart, fStop := roundsValue(rawStart), roundsValue(rawStop)
	row4a := Row{
		ID: "4a", Operation: fmt.Sprintf("start %d boxes concurrently until all ready", n), Unit: "ms",
		Floor:     &fStart,
		FloorDesc: fmt.Sprintf("%d raw os/exec spawns of the shim from as many goroutines, until every ready byte", n),
		Boxsup:    roundsValue(supStart),
		Target:    fmt.Sprintf("p50 ≤ %v (1.5 s per 1000)", startTarget),
		Note:      fmt.Sprintf("p50 is the median, p99 the worst of %d rounds", len(supStart)),
	}
	row4a.judge(func(r *Row) bool { return r.Boxsup.P50 <= ms(startTarget) })
	row4a.noteFloorAbove(ms(startTarget))
	row4b := Row{
		ID: "4b", Operation: fmt.Sprintf("stop those %d boxes concurrently until all replied", n), Unit: "ms",
		Floor:     &fStop,
		FloorDesc: "SIGTERM to every raw shim through its pidfd, until every pidfd reported the exit and the shim was reaped",
		Boxsup:    roundsValue(supStop),
		Target:    fmt.Sprintf("p50 ≤ %v (0.4 s per 1000)", stopTarget),
		Note:      fmt.Sprintf("p50 is the median, p99 the worst of %d rounds", len(supStop)),
	}
	row4b.judge(func(r *Row) bool { return r.Boxsup.P50 <= ms(stopTarget) })
	row4b.noteFloorAbove(ms(stopTarget))
	var rows []Row
	for _, row := range []Row{row4a, row4b} {
		if row.Boxsup.Samples > 0 && row.Floor.Samples > 0 {
			rows = append(rows, row)
		}
	}
	rows = append(rows, metricsRows...)
	return append(rows, costRows...), failed
}

// roundsValue summarises a few rounds: the median and the worst.
func roundsValue(ds []time.Duration) Value {
	s := Summarize(ds)
	return Value{P50: ms(s.P50), P99: ms(s.Max), Samples: s.N}
}

// scaleResult is one boxsup round of the scale rows.
type scaleResult struct {
	start, stop time.Duration
	metrics     []Row // rows 5, first round only
	cost        []Row // rows 7, first round only
}

// boxsupScale starts Boxes boxes at once, measures metrics and cost (first
// round), stops them all at once and shuts the supervisor down.
func (r *runner) boxsupScale(ctx context.Context, spec boxSpec, round int) (scaleResult, error) {
	var res scaleResult
	n := r.cfg.Boxes
	home := r.newHome(fmt.Sprintf("scale-%d", round))
	sup, err := r.newSupervisor(home)
	if err != nil {
		return res, err
	}
	defer stopAll(sup)
	base := readCost()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%05d", i)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*scaleStopTimeout)
	defer cancel()

	took, errs := parallel(n, func(i int) error {
		st, err := sup.Start(ctx, spec.startRequest(ids[i], messages.RestartPolicy{}))
		if err == nil && st.State != messages.StateRunning {
			err = fmt.Errorf("box %s: state %s after Start", ids[i], st.State)
		}
		return err
	})
	if err := firstErrors(errs); err != nil {
		return res, fmt.Errorf("starting %d boxes: %w", n, err)
	}
	res.start = took

	if round == 0 {
		time.Sleep(costSettle)
		res.cost = costRows(base, readCost(), n)
		if res.metrics, err = r.metricsRows(ctx, sup, n); err != nil {
			return res, err
		}
	}

	took, errs = parallel(n, func(i int) error {
		st, err := sup.Stop(ctx, ids[i], scaleStopTimeout)
		if err == nil && (st.State != messages.StateExited || st.Killed) {
			err = fmt.Errorf("box %s: state %s killed=%v after Stop", ids[i], st.State, st.Killed)
		}
		return err
	})
	if err := firstErrors(errs); err != nil {
		return res, fmt.Errorf("stopping %d boxes: %w", n, err)
	}
	res.stop = took
	if round == 0 {
		res.cost = append(res.cost, stormThreadsRow(base, readCost(), n))
	}
	if err := stopAll(sup); err != nil {
		return res, err
	}
	return res, os.RemoveAll(home)
}

// rawScale is the floor of row 4: Boxes raw shims spawned from as many
// goroutines until all are ready, then SIGTERM to all and every exit seen
// and reaped.
func (r *runner) rawScale(spec boxSpec, round int) (start, stop time.Duration, err error) {
	dir := filepath.Join(r.root, fmt.Sprintf("raw-scale-%d", round))
	defer os.RemoveAll(dir)
	shims, start, err := rawSpawnAll(r.cfg.Shim, dir, r.cfg.Boxes, spec)
	defer killRawShims(shims)
	if err != nil {
		return 0, 0, err
	}
	stop, errs := parallel(len(shims), func(i int) error {
		rs := shims[i]
		if err := rs.signal(syscall.SIGTERM); err != nil {
			return err
		}
		if err := rs.waitExit(time.Minute); err != nil {
			return err
		}
		rs.reap()
		return nil
	})
	if err := firstErrors(errs); err != nil {
		return 0, 0, fmt.Errorf("stopping %d: %w", len(shims), err)
	}
	return start, stop, nil
}

// rawSpawnAll prepares n raw-shim directories under dir (untimed), spawns
// the shims from as many goroutines released at once and returns them with
// the time until every ready byte arrived. The caller kills what it gets
// back (killRawShims), also on an error.
func rawSpawnAll(shim, dir string, n int, spec boxSpec) ([]*rawShim, time.Duration, error) {
	specs := make([][]byte, n)
	dirs := make([]string, n)
	for i := range n {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("c%05d", i))
		var err error
		if specs[i], err = rawShimDir(dirs[i], spec); err != nil {
			return nil, 0, err
		}
	}
	shims := make([]*rawShim, n)
	start, errs := parallel(n, func(i int) error {
		rs, err := startRawShim(shim, dirs[i], specs[i])
		if err != nil {
			return err
		}
		shims[i] = rs
		return rs.waitReady(time.Minute)
	})
	if err := firstErrors(errs); err != nil {
		return shims, 0, fmt.Errorf("spawning %d: %w", n, err)
	}
	return shims, start, nil
}

// killRawShims kills and reaps every shim of rawSpawnAll that is still
// there.
func killRawShims(shims []*rawShim) {
	for _, rs := range shims {
		if rs != nil {
			rs.kill()
		}
	}
}

// metricsRows measures row 5: MetricsAll over the running boxes, against
// reading /proc/PID/stat and /proc/PID/statm for the same PIDs (each box's
// shim and its guest) from one goroutine. Calls alternate; one warm-up each
// is not recorded (boxsup's first sample creates its per-process state).
func (r *runner) metricsRows(ctx context.Context, sup *actors.Supervisor, n int) ([]Row, error) {
	list, err := sup.List(ctx, actors.ListOptions{})
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, st := range list {
		if st.PID == 0 {
			continue
		}
		pids = append(pids, st.PID)
		kids, _ := childrenOf(st.PID)
		pids = append(pids, kids...)
	}
	r.progress("row 5: MetricsAll over %d boxes (%d processes), %d samples", n, len(pids), metricsSamples)
	buf := make([]byte, 4096)
	var supD, rawD []time.Duration
	for i := range metricsSamples + 1 {
		t0 := time.Now()
		ms, err := sup.MetricsAll(ctx)
		d := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("MetricsAll: %w", err)
		}
		if len(ms) != n {
			return nil, fmt.Errorf("MetricsAll returned %d samples for %d boxes", len(ms), n)
		}
		t1 := time.Now()
		for _, pid := range pids {
			if _, err := readProcSample(pid, buf); err != nil {
				return nil, fmt.Errorf("metrics floor: %w", err)
			}
		}
		f := time.Since(t1)
		if i > 0 {
			supD, rawD = append(supD, d), append(rawD, f)
		}
	}
	target := scaleTarget(40*time.Millisecond, n)
	fv := durationValue(Summarize(rawD))
	row := Row{
		ID: "5", Operation: fmt.Sprintf("MetricsAll over %d boxes", n), Unit: "ms",
		Floor:     &fv,
		FloorDesc: fmt.Sprintf("reading /proc/PID/stat and /proc/PID/statm of the same %d processes (shims and guests) from one goroutine", len(pids)),
		Boxsup:    durationValue(Summarize(supD)),
		Target:    fmt.Sprintf("p50 ≤ %v (40 ms per 1000)", target),
	}
	row.judge(func(r *Row) bool { return r.Boxsup.P50 <= ms(target) })
	row.noteFloorAbove(ms(target))
	return []Row{row}, nil
}

// costSample is the supervisor process's footprint at one moment.
type costSample struct {
	threads    int
	heap       uint64 // live heap after a GC
	goroutines int
}

// readCost collects garbage and samples threads, live heap and goroutines.
func readCost() costSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	threads, _ := selfThreads()
	return costSample{threads: threads, heap: m.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

// costRows turns the footprint before the boxes (an empty supervisor) and
// with n running boxes into row 7's three lines.
func costRows(before, after costSample, n int) []Row {
	per := func(a, b float64) float64 { return (a - b) / float64(n) }
	note := func(what string, b, a any) string {
		return fmt.Sprintf("%s: %v with the empty supervisor, %v with %d boxes", what, b, a, n)
	}
	threads := Row{
		ID: "7a", Operation: fmt.Sprintf("supervisor OS threads per 100 boxes, at %d boxes", n), Unit: "threads/100 boxes",
		Boxsup: Value{P50: 100 * per(float64(after.threads), float64(before.threads)), Samples: 1},
		Target: "≤ 1",
		Note:   note("threads", before.threads, after.threads),
	}
	threads.Boxsup.P99 = threads.Boxsup.P50
	threads.judge(func(r *Row) bool { return r.Boxsup.P50 <= 1 })
	heap := Row{
		ID: "7b", Operation: fmt.Sprintf("supervisor live heap per box, at %d boxes", n), Unit: "KiB/box",
		Boxsup: Value{P50: per(float64(after.heap), float64(before.heap)) / 1024, Samples: 1},
		Target: "≤ 32 KiB",
		Note:   note("live heap bytes", before.heap, after.heap),
	}
	heap.Boxsup.P99 = heap.Boxsup.P50
	heap.judge(func(r *Row) bool { return r.Boxsup.P50 <= 32 })
	gor := Row{
		ID: "7c", Operation: fmt.Sprintf("supervisor goroutines per box, at %d boxes", n), Unit: "goroutines/box",
		Boxsup: Value{P50: per(float64(after.goroutines), float64(before.goroutines)), Samples: 1},
		Target: "report",
		Note:   note("goroutines", before.goroutines, after.goroutines),
	}
	gor.Boxsup.P99 = gor.Boxsup.P50
	gor.judge(nil)
	return []Row{threads, heap, gor}
}

// stormThreadsRow is row 7d: the supervisor's OS threads once a stop storm
// of n boxes has ended. Go keeps every thread a blocked system call made it
// create, so this is the high-water mark of the storm's blocking: a
// thousand exit watchers or cgroup removals in the kernel at once would
// each leave one behind.
func stormThreadsRow(before, after costSample, n int) Row {
	row := Row{
		ID: "7d", Operation: fmt.Sprintf("supervisor OS threads per 100 boxes, after stopping %d at once", n), Unit: "threads/100 boxes",
		Boxsup: Value{P50: 100 * float64(after.threads-before.threads) / float64(n), Samples: 1},
		Target: "≤ 1",
		Note:   fmt.Sprintf("threads: %d with the empty supervisor, %d once all %d boxes stopped", before.threads, after.threads, n),
	}
	row.Boxsup.P99 = row.Boxsup.P50
	row.judge(func(r *Row) bool { return r.Boxsup.P50 <= 1 })
	return row
}
