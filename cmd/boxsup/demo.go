package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// Demo sizing and pacing.
const (
	demoMinBoxes     = 3 // a worker, the crash victim and the SIGTERM-ignorer
	demoMaxBoxes     = 1000
	demoStubbornStop = 500 * time.Millisecond
	demoEventWait    = 15 * time.Second // the crash victim crashes after ~1 s
	demoCallTimeout  = 60 * time.Second
	demoTableRows    = 12 // metrics tables show at most this many boxes
	demoMarkerEnv    = "BOXSUP_DEMO_HOME"
)

// The demo's special boxes; the others are named worker-N.
const (
	crashBox    = "crashy"
	stubbornBox = "stubborn"
)

func (a *app) demoCommand() *cobra.Command {
	var boxes int
	cmd := &cobra.Command{
		Use:   "demo [--boxes N]",
		Short: "Walk through boxsup in a temporary home",
		Long: "Start N boxes under an in-process supervisor in a temporary home, show live\n" +
			"metrics, crash one (restarted with backoff), stop one that ignores SIGTERM (killed\n" +
			"at the timeout), abandon the supervisor and adopt the survivors by PID with a new one,\n" +
			"then stop everything. Each step reports what it took. Needs only boxsup and\n" +
			"boxsup-shim (and /bin/sh for the guests); it removes every process and file it made.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if boxes < demoMinBoxes || boxes > demoMaxBoxes {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--boxes %d: want %d to %d", boxes, demoMinBoxes, demoMaxBoxes))
			}
			shim := a.shim
			if shim == "" {
				var err error
				if shim, err = actors.FindShim(); err != nil {
					return err
				}
			}
			home, err := os.MkdirTemp("", "boxsup-demo-")
			if err != nil {
				return err
			}
			d := &demo{app: a, out: a.stdout, n: boxes, home: home, shim: shim, shimPIDs: map[int]bool{}}
			return d.run(cmd.Context())
		},
	}
	cmd.Flags().IntVar(&boxes, "boxes", 5, fmt.Sprintf("number of boxes (%d to %d)", demoMinBoxes, demoMaxBoxes))
	return cmd
}

// demo is one walkthrough: its temporary home, the supervisor of the moment
// and what it measured.
type demo struct {
	app  *app
	out  io.Writer
	n    int
	home string
	shim string

	sup       *actors.Supervisor
	unsub     func()
	events    chan messages.Event
	abandoned bool           // boxes may be running with no supervisor
	before    map[string]int // running boxes' PIDs when the supervisor was abandoned

	mu       sync.Mutex
	shimPIDs map[int]bool // every shim the demo saw, for the leftover check

	steps []demoStep
}

type demoStep struct {
	title string
	took  time.Duration
}

// run performs every step, then cleans up whatever happened.
func (d *demo) run(ctx context.Context) (err error) {
	start := time.Now()
	fmt.Fprintf(d.out, "boxsup demo: %d boxes in the temporary home %s\nshim: %s\n\n", d.n, d.home, d.shim)
	defer func() {
		if cerr := d.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	for _, s := range []func(context.Context) error{
		d.startSupervisor, d.startBoxes, d.showMetrics, d.crash, d.showMetrics,
		d.stopStubborn, d.abandon, d.adopt, d.stopAll,
	} {
		if err := s(ctx); err != nil {
			return err
		}
	}
	left, err := d.leftovers()
	if err != nil {
		return err
	}
	d.summary(time.Since(start), left)
	if len(left) > 0 {
		return fmt.Errorf("processes left behind: %v", left)
	}
	return nil
}

// step prints a finished step's headline with its duration and records it.
func (d *demo) step(title string, took time.Duration, details ...string) {
	d.steps = append(d.steps, demoStep{title, took})
	fmt.Fprintf(d.out, "[%d] %-66s %10s\n", len(d.steps), title, ms(took))
	for _, line := range details {
		fmt.Fprintf(d.out, "    %s\n", line)
	}
	fmt.Fprintln(d.out)
}

// callCtx bounds one supervisor call.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, demoCallTimeout)
}

// newSupervisor opens the demo home and follows its events.
func (d *demo) newSupervisor() error {
	sup, err := actors.NewSupervisor(context.Background(), actors.Config{Home: d.home, ShimBinary: d.shim, Logger: d.app.log})
	if err != nil {
		return err
	}
	d.sup = sup
	d.abandoned = false
	events := make(chan messages.Event, 64)
	d.events = events
	d.unsub = sup.Subscribe(actors.EventFilter{}, func(ev messages.Event) {
		if s, ok := ev.(messages.BoxStarted); ok {
			d.notePID(s.PID)
		}
		if ev.Box() != crashBox {
			return // the demo waits for the crash victim's events only
		}
		select {
		case events <- ev:
		default: // the demo only waits for a few events; never block delivery
		}
	})
	return nil
}

func (d *demo) notePID(pid int) {
	d.mu.Lock()
	d.shimPIDs[pid] = true
	d.mu.Unlock()
}

// closeSupervisor shuts the current supervisor down with mode.
func (d *demo) closeSupervisor(ctx context.Context, mode actors.ShutdownMode) error {
	if d.sup == nil {
		return nil
	}
	d.unsub()
	sup := d.sup
	d.sup = nil
	return sup.Shutdown(ctx, mode)
}

// waitEvent returns the first event that match accepts, or an error after
// demoEventWait.
func (d *demo) waitEvent(ctx context.Context, what string, match func(messages.Event) bool) (messages.Event, error) {
	deadline := time.NewTimer(demoEventWait)
	defer deadline.Stop()
	for {
		select {
		case ev := <-d.events:
			if match(ev) {
				return ev, nil
			}
		case <-deadline.C:
			return nil, fmt.Errorf("demo: no %s within %s", what, demoEventWait)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// cleanup stops every box the demo may have left (also after a failure or
// an interrupt), reaps the shims this process is still parent of, and
// removes the temporary home.
func (d *demo) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), demoCallTimeout)
	defer cancel()
	var errs []string
	if d.sup == nil && d.abandoned {
		// Boxes run with no supervisor: take the home again to stop them.
		if err := d.newSupervisor(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if err := d.closeSupervisor(ctx, actors.StopAll); err != nil {
		errs = append(errs, err.Error())
	}
	reapChildren()
	if err := os.RemoveAll(d.home); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("demo cleanup: %s", strings.Join(errs, "; "))
	}
	return nil
}

// summary prints every step's duration and the leftover check.
func (d *demo) summary(total time.Duration, left []int) {
	fmt.Fprintln(d.out, "summary")
	var sum time.Duration
	for i, s := range d.steps {
		fmt.Fprintf(d.out, "  [%d] %-66s %10s\n", i+1, s.title, ms(s.took))
		sum += s.took
	}
	fmt.Fprintf(d.out, "  %-70s %10s\n", "steps", ms(sum))
	fmt.Fprintf(d.out, "  %-70s %10s\n", "wall clock (with the pauses between steps)", ms(total))
	d.mu.Lock()
	shims := len(d.shimPIDs)
	d.mu.Unlock()
	fmt.Fprintf(d.out, "  shims started: %d; processes left behind: %d; the temporary home is removed on exit\n", shims, len(left))
}
