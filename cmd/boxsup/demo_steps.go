package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// Guest commands of the demo boxes. They need only /bin/sh and sleep.
const (
	demoIdleGuest     = "exec sleep 600"
	demoBusyGuest     = "while :; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 0.05; done"
	demoCrashGuest    = "sleep 1; exit 1"
	demoStubbornGuest = `trap "" TERM; while :; do sleep 0.2; done`
)

// crashPolicy restarts the crash victim on failure with a small capped
// exponential backoff (full jitter), as often as it takes during the demo.
var crashPolicy = messages.RestartPolicy{
	Mode:           messages.RestartOnFailure,
	MaxRestarts:    -1,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     time.Second,
}

// boxRequests returns the demo's boxes: worker-1 (a light CPU loop), more
// idle workers, the crash victim and the SIGTERM-ignorer, all detached so
// that they outlive an abandoned supervisor.
func (d *demo) boxRequests() []messages.StartBox {
	mk := func(id, script string) messages.StartBox {
		return messages.StartBox{ID: id, Spec: messages.InstanceSpec{
			Detach: true,
			GuestEntrypoint: messages.Entrypoint{
				Executable: "/bin/sh",
				Args:       []string{"-c", script},
				Env:        []string{"PATH=/usr/bin:/bin", demoMarkerEnv + "=" + d.home},
			},
		}}
	}
	var reqs []messages.StartBox
	for i := 1; i <= d.n-2; i++ {
		script := demoIdleGuest
		if i == 1 {
			script = demoBusyGuest
		}
		reqs = append(reqs, mk(fmt.Sprintf("worker-%d", i), script))
	}
	crash := mk(crashBox, demoCrashGuest)
	crash.Restart = crashPolicy
	stubborn := mk(stubbornBox, demoStubbornGuest)
	stubborn.StopTimeout = demoStubbornStop
	return append(reqs, crash, stubborn)
}

func (d *demo) startSupervisor(context.Context) error {
	t0 := time.Now()
	if err := d.newSupervisor(); err != nil {
		return err
	}
	d.step("start a supervisor (lock the home, reconcile: nothing yet)", time.Since(t0))
	return nil
}

func (d *demo) startBoxes(ctx context.Context) error {
	reqs := d.boxRequests()
	type result struct {
		st   messages.BoxStatus
		took time.Duration
		err  error
	}
	results := make([]result, len(reqs))
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := callCtx(ctx)
			defer cancel()
			s := time.Now()
			st, err := d.sup.Start(cctx, req)
			results[i] = result{st, time.Since(s), err}
		}()
	}
	wg.Wait()
	took := time.Since(t0)
	var lines []string
	for i, r := range results {
		if r.err != nil {
			return fmt.Errorf("starting %s: %w", reqs[i].ID, r.err)
		}
		d.notePID(r.st.PID)
		if i < demoTableRows {
			lines = append(lines, fmt.Sprintf("%-10s pid %-8d ready after %9s   sh -c '%s'", r.st.ID, r.st.PID, ms(r.took), reqs[i].Spec.GuestEntrypoint.Args[1]))
		}
	}
	if len(results) > demoTableRows {
		lines = append(lines, fmt.Sprintf("... and %d more", len(results)-demoTableRows))
	}
	lines = append(lines, fmt.Sprintf("%s restarts on failure (backoff from %s, doubling to %s, full jitter); %s has a %s stop timeout",
		crashBox, crashPolicy.InitialBackoff, crashPolicy.MaxBackoff, stubbornBox, demoStubbornStop))
	d.step(fmt.Sprintf("start %d detached boxes in parallel (each: spawn to ready)", len(reqs)), took, lines...)
	return nil
}

func (d *demo) showMetrics(ctx context.Context) error {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	t0 := time.Now()
	samples, err := d.sup.MetricsAll(cctx)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	var buf bytes.Buffer
	tw := newTable(&buf, "ID", "PID", "CPU%", "MEM", "PROCS", "DISK", "UPTIME")
	for i, m := range samples {
		if i == demoTableRows {
			fmt.Fprintf(tw, "... and %d more\n", len(samples)-demoTableRows)
			break
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%d\t%s\t%s\n", m.ID, m.PID, m.CPUPercent, humanBytes(m.MemoryBytes),
			m.Processes, humanBytes(m.DiskBytes), humanDuration(m.Uptime))
	}
	_ = tw.Flush()
	title := fmt.Sprintf("live metrics of %d boxes (CPU%% since each shim started)", len(samples))
	if d.metricsShown() {
		title = fmt.Sprintf("live metrics of %d boxes (CPU%% since the previous sample)", len(samples))
	}
	d.step(title, took, strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")...)
	return nil
}

// metricsShown reports whether a metrics step was already printed.
func (d *demo) metricsShown() bool {
	for _, s := range d.steps {
		if strings.HasPrefix(s.title, "live metrics") {
			return true
		}
	}
	return false
}

func (d *demo) crash(ctx context.Context) error {
	ev, err := d.waitEvent(ctx, crashBox+" exit", func(ev messages.Event) bool {
		x, ok := ev.(messages.BoxExited)
		return ok && !x.Requested
	})
	if err != nil {
		return err
	}
	exited := ev.(messages.BoxExited)
	ev, err = d.waitEvent(ctx, crashBox+" restart decision", func(ev messages.Event) bool {
		_, ok := ev.(messages.BoxRestarting)
		return ok
	})
	if err != nil {
		return err
	}
	restarting := ev.(messages.BoxRestarting)
	ev, err = d.waitEvent(ctx, crashBox+" readiness after its restart", func(ev messages.Event) bool {
		r, ok := ev.(messages.BoxReady)
		return ok && r.Generation > exited.Generation
	})
	if err != nil {
		return err
	}
	ready := ev.(messages.BoxReady)
	d.step(crashBox+" crashes and its restart policy brings it back (exit to ready)", ready.At.Sub(exited.At),
		fmt.Sprintf("pid %d exited by itself: %s", exited.PID, exited.Exit),
		fmt.Sprintf("on-failure: restart #%d after a %s backoff", restarting.Attempt, ms(restarting.Delay)),
		fmt.Sprintf("running again as pid %d (spawn to ready %s)", ready.PID, ms(ready.Took)))
	return nil
}

func (d *demo) stopStubborn(ctx context.Context) error {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	t0 := time.Now()
	st, err := d.sup.Stop(cctx, stubbornBox, demoStubbornStop)
	if err != nil {
		return err
	}
	took := time.Since(t0)
	outcome := "it exited on SIGTERM after all"
	if st.Killed {
		outcome = fmt.Sprintf("SIGTERM was ignored; its tree was SIGKILLed at the %s timeout", demoStubbornStop)
	}
	exit := "unknown"
	if st.LastExit != nil {
		exit = st.LastExit.String()
	}
	d.step(fmt.Sprintf("stop %s, which ignores SIGTERM (timeout %s)", stubbornBox, demoStubbornStop), took,
		outcome, "final status: "+exit)
	return nil
}

// running returns the running boxes' PIDs by ID.
func (d *demo) running(ctx context.Context) (map[string]int, error) {
	cctx, cancel := callCtx(ctx)
	defer cancel()
	list, err := d.sup.List(cctx, actors.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, st := range list {
		if st.State == messages.StateRunning && st.PID > 0 {
			out[st.ID] = st.PID
		}
	}
	return out, nil
}

// errNoSupervisor is a step run out of order.
var errNoSupervisor = fmt.Errorf("demo: no supervisor")

func (d *demo) abandon(ctx context.Context) error {
	if d.sup == nil {
		return errNoSupervisor
	}
	before, err := d.running(ctx)
	if err != nil {
		return err
	}
	d.before = before
	cctx, cancel := callCtx(ctx)
	defer cancel()
	t0 := time.Now()
	d.abandoned = true
	if err := d.closeSupervisor(cctx, actors.LeaveRunning); err != nil {
		return err
	}
	took := time.Since(t0)
	alive := 0
	for _, pid := range before {
		if processAlive(pid) {
			alive++
		}
	}
	d.step("abandon the supervisor (Shutdown LeaveRunning)", took,
		fmt.Sprintf("home lock released; %d of the %d running boxes' shims are still alive with no supervisor", alive, len(before)))
	return nil
}

func (d *demo) adopt(ctx context.Context) error {
	t0 := time.Now()
	if err := d.newSupervisor(); err != nil {
		return err
	}
	took := time.Since(t0)
	after, err := d.running(ctx)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(d.before))
	for id := range d.before {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	same := 0
	var lines []string
	for i, id := range ids {
		was, now := d.before[id], after[id]
		d.notePID(now)
		verdict := "adopted: same process"
		switch {
		case now == was:
			same++
		case now == 0:
			verdict = "not running now (it exited while unsupervised)"
		default:
			verdict = "exited while unsupervised; restarted by its policy"
		}
		if i < demoTableRows {
			lines = append(lines, fmt.Sprintf("%-10s pid %-8d -> %-8d %s", id, was, now, verdict))
		}
	}
	if len(ids) > demoTableRows {
		lines = append(lines, fmt.Sprintf("... and %d more", len(ids)-demoTableRows))
	}
	lines = append(lines, fmt.Sprintf("%d of %d boxes adopted by PID (identity checked: pid, start time, boot id)", same, len(ids)))
	d.step("start a new supervisor: it adopts the survivors by PID", took, lines...)
	return nil
}

func (d *demo) stopAll(ctx context.Context) error {
	live, err := d.running(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := callCtx(ctx)
	defer cancel()
	t0 := time.Now()
	if err := d.closeSupervisor(cctx, actors.StopAll); err != nil {
		return err
	}
	took := time.Since(t0)
	d.step("stop everything (Shutdown StopAll, in parallel)", took,
		fmt.Sprintf("%d running boxes stopped; supervisor closed, home unlocked", len(live)))
	return nil
}
