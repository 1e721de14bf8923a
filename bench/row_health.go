package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/health"
	"github.com/boxsup/boxsup/messages"
)

// Row 10's settings: every box has a tcp check every healthInterval; each
// round lets the first probes spread (healthWarmUp) and then measures the
// process's CPU over healthWindow.
const (
	healthInterval = time.Second
	healthWarmUp   = 2 * time.Second
	healthWindow   = 5 * time.Second
	// healthRatioTarget bounds the scheduler's CPU against the bare dial
	// loop's.
	healthRatioTarget = 2.0
)

// healthRows measures row 10: the supervisor's CPU for Boxes boxes, each
// with a tcp health check every second, run by health.Scheduler against
// as many loopback listeners served in this process. The floor is a bare
// loop that dials the same listeners at the same rate (one ticker, one
// net.Dial and Close per tick), so that both sides pay for the listeners'
// accepts alike and the ratio is the scheduler's own cost: timers, the
// worker pool, the result and its delivery. The lifecycle wiring (box
// actors feeding a Tracker and publishing events) is not part of it.
func (r *runner) healthRows(ctx context.Context) ([]Row, error) {
	n := r.cfg.Boxes
	farm, err := newListenerFarm(n)
	if err != nil {
		return nil, err
	}
	defer farm.close()
	var boxsup, floor []float64
	var probes, failures []int64
	var failed error
	for round := range r.cfg.Rounds {
		r.progress("row 10, round %d/%d: %d tcp checks every %v", round+1, r.cfg.Rounds, n, healthInterval)
		fl, err := farm.bareDials(ctx)
		if err != nil {
			failed = fmt.Errorf("round %d: floor: %w", round, err)
			break
		}
		res, err := farm.scheduled(ctx)
		if err != nil {
			failed = fmt.Errorf("round %d: %w", round, err)
			break
		}
		floor, boxsup = append(floor, fl), append(boxsup, res.cpu)
		probes, failures = append(probes, res.probes), append(failures, res.failures)
	}
	if len(boxsup) == 0 {
		return nil, failed
	}
	fv := percentValue(floor)
	row := Row{
		ID: "10", Operation: fmt.Sprintf("%d boxes with a tcp health check every %v: the supervisor's CPU", n, healthInterval),
		Unit:      "% of a core",
		Floor:     &fv,
		FloorDesc: fmt.Sprintf("one loop dialling the same %d listeners at the same rate (net.Dial + Close)", n),
		Boxsup:    percentValue(boxsup),
		Target:    fmt.Sprintf("p50 ≤ %.1f× floor", healthRatioTarget),
		Note: fmt.Sprintf("health.Scheduler with default workers against %d loopback listeners in the bench process (their accepts count on both sides); "+
			"CPU of the whole process over %v after a %v warm-up; p50 is the median, p99 the worst of %d rounds; probes per round %v, failed %v",
			n, healthWindow, healthWarmUp, len(boxsup), probes, failures),
	}
	row.judge(func(r *Row) bool { return r.Ratio != nil && *r.Ratio <= healthRatioTarget })
	if failed == nil && slices.ContainsFunc(failures, func(f int64) bool { return f > 0 }) {
		failed = fmt.Errorf("tcp probes of live listeners failed: %v", failures)
	}
	return []Row{row}, failed
}

// percentValue turns per-round CPU shares into a Value: the median and the
// worst round.
func percentValue(rounds []float64) Value {
	s := slices.Clone(rounds)
	slices.Sort(s)
	return Value{P50: s[(len(s)-1)/2], P99: s[len(s)-1], Samples: len(s)}
}

// listenerFarm is n loopback listeners that accept and close at once, and
// the warm-up and window of the measurements made against them.
type listenerFarm struct {
	listeners      []net.Listener
	wg             sync.WaitGroup
	warmUp, window time.Duration
}

func newListenerFarm(n int) (*listenerFarm, error) {
	f := &listenerFarm{warmUp: healthWarmUp, window: healthWindow}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			f.close()
			return nil, fmt.Errorf("listener %d of %d: %w", len(f.listeners)+1, n, err)
		}
		f.listeners = append(f.listeners, ln)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				c, err := ln.Accept()
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if err == nil {
					_ = c.Close()
				}
			}
		}()
	}
	return f, nil
}

func (f *listenerFarm) close() {
	for _, ln := range f.listeners {
		_ = ln.Close()
	}
	f.wg.Wait()
}

// processCPU is the CPU time this process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU returns the process's CPU over window as a percentage of one
// core.
func measureCPU(ctx context.Context, window time.Duration) (float64, error) {
	cpu0, t0 := processCPU(), time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return 100 * float64(processCPU()-cpu0) / float64(time.Since(t0)), nil
}

// bareDials is the floor: one goroutine dials the listeners in turn, all
// of them once per healthInterval, for the warm-up and the window.
func (f *listenerFarm) bareDials(ctx context.Context) (float64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(healthInterval / time.Duration(len(f.listeners)))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				errc <- nil
				return
			case <-tick.C:
			}
			c, err := net.DialTimeout("tcp", f.listeners[i%len(f.listeners)].Addr().String(), time.Second)
			if err != nil {
				errc <- err
				return
			}
			_ = c.Close()
		}
	}()
	select {
	case <-time.After(f.warmUp):
	case err := <-errc:
		return 0, err
	}
	cpu, err := measureCPU(ctx, f.window)
	cancel()
	if derr := <-errc; derr != nil {
		return 0, derr
	}
	return cpu, err
}

// schedResult is one round of the scheduler.
type schedResult struct {
	cpu              float64
	probes, failures int64 // in the window
}

// scheduled runs a Scheduler with one tcp check per listener for the
// warm-up and the window.
func (f *listenerFarm) scheduled(ctx context.Context) (schedResult, error) {
	var counting atomic.Bool
	var probes, failures atomic.Int64
	s := health.NewScheduler(func(_ string, _ uint64, r messages.HealthResult) {
		if !counting.Load() {
			return
		}
		probes.Add(1)
		if r.Outcome != messages.HealthPass {
			failures.Add(1)
		}
	}, health.Options{})
	defer s.Close()
	spec := &messages.InstanceSpec{Engine: messages.EngineProcess}
	for i, ln := range f.listeners {
		job := health.Job{BoxID: fmt.Sprintf("h%05d", i), Gen: 1, Target: health.Target{Spec: spec},
			Check: messages.HealthCheck{TCP: ln.Addr().String(), Interval: healthInterval, Timeout: healthInterval}}
		if err := s.Add(job); err != nil {
			return schedResult{}, err
		}
	}
	select {
	case <-time.After(f.warmUp):
	case <-ctx.Done():
		return schedResult{}, ctx.Err()
	}
	counting.Store(true)
	cpu, err := measureCPU(ctx, f.window)
	counting.Store(false)
	return schedResult{cpu: cpu, probes: probes.Load(), failures: failures.Load()}, err
}
