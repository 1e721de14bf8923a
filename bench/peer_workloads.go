package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// asyncCall runs a peer command in the background while the workload
// watches /proc.
type asyncCall struct {
	done chan struct{}
	err  error
}

func runAsync(fn func() error) *asyncCall {
	c := &asyncCall{done: make(chan struct{})}
	go func() {
		c.err = fn()
		close(c.done)
	}()
	return c
}

// failed returns the command's error if it has already returned with one.
func (c *asyncCall) failed() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// wait waits for the command to return.
func (c *asyncCall) wait(timeout time.Duration) error {
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		return fmt.Errorf("the command did not return within %v", timeout)
	}
}

// awaitSleeps waits until n sleep children descending from the supervisor
// (roots, read again at each look: a peer's daemon may come up meanwhile)
// have been exec'd at or after t0. It returns the time of the n-th exec
// and their PIDs. call, when not nil, is the peer command that should lead
// there; its failure ends the wait.
func (r *peerRun) awaitSleeps(roots func() []int, n int, t0 int64, timeout time.Duration, call *asyncCall) (int64, []int, error) {
	deadline := time.Now().Add(timeout)
	verified := map[int]int64{}
	rejected := map[int]bool{}
	for {
		rs := roots()
		if len(rs) > 0 {
			for _, e := range r.env.watch.execsSince(t0) {
				if _, ok := verified[e.pid]; ok || rejected[e.pid] {
					continue
				}
				if runsExe(e.pid, r.env.sleepExe) && descendsFrom(e.pid, rs) {
					verified[e.pid] = e.at
				} else {
					rejected[e.pid] = true // another program's sleep, or gone already
				}
			}
			if r.env.watch.droppedEvents() {
				// The kernel dropped events: count what runs now instead.
				c := censusOf(rs, r.env.sleepExe)
				now := monoNow()
				for _, pid := range c.sleeps {
					if _, ok := verified[pid]; !ok {
						verified[pid] = now
					}
				}
			}
		}
		if len(verified) >= n {
			ats := make([]int64, 0, len(verified))
			pids := make([]int, 0, len(verified))
			for pid, at := range verified {
				ats = append(ats, at)
				pids = append(pids, pid)
			}
			slices.Sort(ats)
			return ats[n-1], pids, nil
		}
		if call != nil {
			if err := call.failed(); err != nil {
				return 0, nil, err
			}
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("%d of %d services running after %v", len(verified), n, timeout)
		}
		r.env.watch.wait(50 * time.Millisecond)
	}
}

// awaitExits waits until every one of pids has exited and returns the time
// of the last exit. The pids must have been followed (watch.followExits)
// before anything could make them exit.
func (r *peerRun) awaitExits(pids []int, timeout time.Duration, call *asyncCall) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		var last int64
		missing := 0
		for _, pid := range pids {
			at, ok := r.env.watch.exitOf(pid)
			if !ok && r.env.watch.droppedEvents() && !live(pid) {
				at, ok = monoNow(), true
			}
			if !ok {
				missing++
				continue
			}
			last = max(last, at)
		}
		if missing == 0 {
			return last, nil
		}
		if call != nil {
			if err := call.failed(); err != nil {
				return 0, err
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d services still running after %v", missing, len(pids), timeout)
		}
		r.env.watch.wait(50 * time.Millisecond)
	}
}

// storageTimeout bounds one start or stop of many services.
const storageTimeout = 10 * time.Minute

// scale runs the start/stop workload with n services: start until all
// run, then memory, metrics and idle CPU where asked, then stop until all
// have exited.
func (r *peerRun) scale(ctx context.Context, p *peerState, inst peerInstance, n int, idleAndMetrics, memory bool) error {
	name := p.driver.name()
	if err := inst.launch(ctx); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	load := loadAvg()
	t0 := monoNow()
	call := runAsync(func() error { return inst.startAll(ctx) })
	at, _, err := r.awaitSleeps(inst.roots, n, t0, storageTimeout, call)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := call.wait(storageTimeout); err != nil {
		return fmt.Errorf("start command: %w", err)
	}
	census := censusOf(inst.roots(), r.env.sleepExe)
	if len(census.sleeps) != n {
		return fmt.Errorf("start: %d sleep processes under the supervisor, want exactly %d", len(census.sleeps), n)
	}
	r.data.add("start", n, name, time.Duration(at-t0), load)
	r.progress("%s: started %d in %v (load %s)", name, n, time.Duration(at-t0).Round(time.Millisecond), load)

	if memory {
		r.measureMemory(name, n, inst, census)
	}
	if idleAndMetrics {
		r.measureMetrics(ctx, name, n, inst)
		r.measureIdle(name, n, inst)
	}

	r.env.watch.followExits(census.sleeps)
	load = loadAvg()
	t1 := monoNow()
	call = runAsync(func() error { return inst.stopAll(ctx) })
	last, err := r.awaitExits(census.sleeps, storageTimeout, call)
	if err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := call.wait(storageTimeout); err != nil {
		return fmt.Errorf("stop command: %w", err)
	}
	r.data.add("stop", n, name, time.Duration(last-t1), load)
	r.progress("%s: stopped %d in %v", name, n, time.Duration(last-t1).Round(time.Millisecond))
	return nil
}

// measureMemory records the PSS of the supervisor and its helpers, and of
// the sleeps, per service.
func (r *peerRun) measureMemory(name string, n int, inst peerInstance, c treeCensus) {
	helpers, _ := sumPSS(c.helpers)
	sleeps, _ := sumPSS(c.sleeps)
	var perService uint64 // helpers other than the supervisor's own processes
	roots := inst.roots()
	for _, pid := range c.helpers {
		if !slices.Contains(roots, pid) {
			v, _ := pssKiB(pid)
			perService += v
		}
	}
	r.data.setMemory(name, n, memorySample{
		helpersKiB: float64(helpers) / float64(n), sleepsKiB: float64(sleeps) / float64(n),
		perServiceKiB: float64(perService) / float64(n), processes: len(c.helpers),
	})
}

// metricsCalls is how many metrics calls are timed.
const metricsCalls = 5

// measureMetrics times the peer's metrics of every service.
func (r *peerRun) measureMetrics(ctx context.Context, name string, n int, inst peerInstance) {
	var ds []time.Duration
	covered := 0
	for i := range metricsCalls + 1 {
		t0 := time.Now()
		got, err := inst.metrics(ctx)
		d := time.Since(t0)
		if err == errNoMetrics {
			r.data.setMetrics(name, metricsSample{none: true})
			return
		}
		if err != nil {
			r.data.setMetrics(name, metricsSample{err: err.Error()})
			return
		}
		covered = got
		if i > 0 { // the first call warms caches up
			ds = append(ds, d)
		}
	}
	r.data.setMetrics(name, metricsSample{took: Summarize(ds), covered: covered, of: n})
}

// measureIdle adds up the CPU time the supervisor and its helpers use in
// the idle window.
func (r *peerRun) measureIdle(name string, n int, inst peerInstance) {
	c := censusOf(inst.roots(), r.env.sleepExe)
	before := sumCPU(c.helpers)
	time.Sleep(r.cfg.Idle)
	after := sumCPU(c.helpers)
	var used time.Duration
	for pid, a := range after {
		if b, ok := before[pid]; ok && a > b {
			used += a - b
		}
	}
	r.data.setIdle(name, idleSample{used: used, window: r.cfg.Idle, processes: len(c.helpers)})
}

// floorStart is the floor of the start workload: n reference shims
// spawned with plain os/exec from as many goroutines, until every ready
// byte (the shim writes it once its guest runs).
func (r *peerRun) floorStart(ctx context.Context, n, round int) {
	spec, err := sleeperSpec()
	if err != nil {
		r.rep.Errors = append(r.rep.Errors, "floor: "+err.Error())
		return
	}
	r.progress("floor: %d raw shims, round %d", n, round+1)
	dir := filepath.Join(r.root, fmt.Sprintf("floor-%d-%d", n, round))
	defer os.RemoveAll(dir)
	load := loadAvg()
	shims, took, err := rawSpawnAll(r.env.shim, dir, n, spec)
	killRawShims(shims)
	if err != nil {
		r.rep.Errors = append(r.rep.Errors, fmt.Sprintf("floor, start %d: %v", n, err))
		return
	}
	r.data.add("start", n, floorName, took, load)
}

// crash measures crash→restart: SIGKILL to the service's sleep until the
// next sleep of the service has been exec'd, Crashes times after three
// unrecorded ones, each at least CrashSpacing after the previous start.
func (r *peerRun) crash(ctx context.Context, p *peerState, inst peerInstance) error {
	if err := inst.launch(ctx); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	t0 := monoNow()
	call := runAsync(func() error { return inst.startAll(ctx) })
	at, pids, err := r.awaitSleeps(inst.roots, 1, t0, time.Minute, call)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := call.wait(time.Minute); err != nil {
		return fmt.Errorf("start command: %w", err)
	}
	cur, curAt := pids[0], at
	var samples []time.Duration
	loads := []string{loadAvg()}
	for i := range r.cfg.Crashes + warmIterations {
		if err := ctx.Err(); err != nil {
			return err
		}
		if wait := time.Duration(curAt + int64(r.cfg.CrashSpacing) - monoNow()); wait > 0 {
			time.Sleep(wait)
		}
		t := monoNow()
		if err := killPID(cur); err != nil {
			return fmt.Errorf("crash %d: %w", i, err)
		}
		at, pids, err := r.awaitSleeps(inst.roots, 1, t, 30*time.Second, nil)
		if err != nil {
			return fmt.Errorf("crash %d: no restart: %w", i, err)
		}
		if i >= warmIterations {
			samples = append(samples, time.Duration(at-t))
		}
		cur, curAt = pids[0], at
		if i%10 == 9 {
			loads = append(loads, loadAvg())
		}
	}
	r.data.setSamples("crash", p.driver.name(), samples, loads)
	s := Summarize(samples)
	r.progress("%s: crash→restart p50 %v p99 %v", p.driver.name(), s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond))
	return nil
}

// ignorer measures kill past the timeout: the service ignores SIGTERM
// (and SIGINT); the peer is asked to stop it with a 100 ms timeout (or
// the least it takes); the sample is from the first stop signal the
// process received to its death, minus the timeout the peer applies.
func (r *peerRun) ignorer(ctx context.Context, p *peerState, inst peerInstance) error {
	const name = "ignorer"
	timeout := p.driver.effectiveTimeout(ignorerTimeout)
	if err := inst.launch(ctx); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	t0 := monoNow()
	call := runAsync(func() error { return inst.startAll(ctx) })
	at, pids, err := r.awaitSleeps(inst.roots, 1, t0, time.Minute, call)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := call.wait(time.Minute); err != nil {
		return fmt.Errorf("start command: %w", err)
	}
	cur, curAt := pids[0], at
	mask := sigBit(unix.SIGTERM) | sigBit(unix.SIGINT)
	var samples []time.Duration
	loads := []string{loadAvg()}
	for i := range r.cfg.IgnorerStops + warmIterations {
		if err := ctx.Err(); err != nil {
			return err
		}
		// As in the crash workload, the service runs for CrashSpacing first:
		// ochinchina/supervisord cannot start a program again for 5 s after
		// stopping one that ran less than 2 s.
		if wait := time.Duration(curAt + int64(r.cfg.CrashSpacing) - monoNow()); wait > 0 {
			time.Sleep(wait)
		}
		if !pollUntil(10*time.Second, time.Millisecond, func() bool { return sigIgnored(cur, mask) }) {
			return fmt.Errorf("stop %d: pid %d does not ignore SIGTERM and SIGINT", i, cur)
		}
		took, err := traceStopOf(cur, inst.signalled(cur), func() error { return inst.stopOne(ctx, name) })
		if err != nil {
			return fmt.Errorf("stop %d: %w", i, err)
		}
		if i >= warmIterations {
			samples = append(samples, took-timeout)
		}
		t := monoNow()
		if err := inst.startOne(ctx, name); err != nil {
			return fmt.Errorf("start %d: %w", i, err)
		}
		at, pids, err := r.awaitSleeps(inst.roots, 1, t, time.Minute, nil)
		if err != nil {
			return fmt.Errorf("start %d: %w", i, err)
		}
		cur, curAt = pids[0], at
	}
	r.data.setSamples("ignorer", p.driver.name(), samples, loads)
	r.data.setTimeout(p.driver.name(), timeout)
	return nil
}

// recovery runs Recovery services, SIGKILLs the supervisor's own process,
// recovers the way the peer documents, and counts: sleeps that kept their
// PID, duplicates (sleeps beyond one per service), and orphans (processes
// of the run the recovered supervisor no longer controls: still alive
// after its own stop-all and shutdown).
func (r *peerRun) recovery(ctx context.Context, p *peerState, inst peerInstance) error {
	n := r.cfg.Recovery
	if err := inst.launch(ctx); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	t0 := monoNow()
	call := runAsync(func() error { return inst.startAll(ctx) })
	if _, _, err := r.awaitSleeps(inst.roots, n, t0, storageTimeout, call); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := call.wait(storageTimeout); err != nil {
		return fmt.Errorf("start command: %w", err)
	}
	if err := inst.beforeKill(ctx); err != nil {
		return fmt.Errorf("before the kill: %w", err)
	}
	roots := inst.roots()
	before := censusOf(roots, r.env.sleepExe)
	for _, pid := range roots {
		if err := killPID(pid); err != nil {
			return fmt.Errorf("SIGKILL to the supervisor: %w", err)
		}
	}
	if !pollUntil(10*time.Second, time.Millisecond, func() bool { r.env.procs.reapOrphans(); return !anyLive(roots) }) {
		return fmt.Errorf("the supervisor survived SIGKILL")
	}
	if err := inst.recover(ctx); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	self := os.Getpid()
	after := r.settledSleeps(self)
	res := recoverySample{services: n, running: len(after)}
	for _, pid := range after {
		if slices.Contains(before.sleeps, pid) {
			res.samePIDs++
		}
	}
	res.duplicates = max(0, len(after)-n)
	res.underNew = len(censusOf(inst.roots(), r.env.sleepExe).sleeps)

	// What the recovered supervisor controls: ask it to stop everything,
	// then shut it down; whatever of the run still lives is an orphan.
	if err := inst.stopAll(ctx); err != nil {
		res.notes = append(res.notes, "stop-all after recovery: "+shortErr(err))
	}
	res.afterStopAll = len(r.settledSleeps(self))
	if err := inst.shutdown(ctx); err != nil {
		res.notes = append(res.notes, "shutdown after recovery: "+shortErr(err))
	}
	time.Sleep(500 * time.Millisecond)
	r.env.procs.reapOrphans()
	for _, pid := range r.env.procs.strays(nil) {
		if runsExe(pid, r.env.sleepExe) {
			res.orphanSleeps++
		} else {
			res.orphanHelpers++
		}
	}
	r.data.setRecovery(p.driver.name(), res)
	r.progress("%s: after SIGKILL: %s", p.driver.name(), res.String())
	return nil
}

// settledSleeps waits until the number of live sleeps under this process
// has not changed for two seconds (at most 30 s) and returns them.
func (r *peerRun) settledSleeps(self int) []int {
	var last []int
	stable := time.Now()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.env.procs.reapOrphans()
		cur := censusOf([]int{self}, r.env.sleepExe).sleeps
		if len(cur) != len(last) {
			last, stable = cur, time.Now()
		}
		if time.Since(stable) >= 2*time.Second || time.Now().After(deadline) {
			return cur
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shortErr shortens an error for a table note.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
