package declare

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/boxsup/boxsup/messages"
)

// Capabilities says what a Backend can honour. Apply refuses a plan that
// needs more, before it changes anything.
type Capabilities struct {
	// Labels: Create stores labels and List returns them. Apply always
	// needs it: the labels record which boxes a file created.
	Labels bool
	// Update: Update changes a box's restart policy, stop timeout and
	// labels in place, without touching its process.
	Update bool
	// HealthChecks: Create runs a box's HealthCheck, and WaitHealthy
	// works.
	HealthChecks bool
}

// Backend is what Apply needs from a supervisor.
type Backend interface {
	// Capabilities says what the backend can honour.
	Capabilities() Capabilities
	// List returns every box with its state and labels.
	List(ctx context.Context) ([]Existing, error)
	// Create creates box.Start with labels (and box.HealthCheck) and
	// returns once it is ready.
	Create(ctx context.Context, box *DeclaredBox, labels map[string]string) error
	// StartExisting starts a box at rest from its stored spec and returns
	// once it is ready.
	StartExisting(ctx context.Context, id string) error
	// Update sets a box's restart policy, stop timeout and labels to the
	// declaration's, in place.
	Update(ctx context.Context, box *DeclaredBox, labels map[string]string) error
	// Remove stops a box (within its stop timeout) and removes it.
	Remove(ctx context.Context, id string) error
	// WaitHealthy returns once the box's health check has passed.
	WaitHealthy(ctx context.Context, id string) error
}

// Check returns an error listing everything in the plan that caps cannot
// honour, or nil. The error is messages.ErrBadSpec.
func Check(p *Plan, caps Capabilities) error {
	var why []string
	if !caps.Labels {
		why = append(why, "this supervisor cannot store box labels, and apply records in labels which boxes a file created ("+LabelApplyID+"): apply would not know what to remove later")
	}
	for _, c := range p.Changes {
		if c.Action == ActionUpdate && !caps.Update {
			why = append(why, fmt.Sprintf("box %s: its restart policy, stop timeout or labels changed, and this supervisor cannot update a box in place (remove the box to have it created again)", c.ID))
		}
		if c.Declared == nil || caps.HealthChecks {
			continue
		}
		if c.Declared.HealthCheck != nil {
			why = append(why, fmt.Sprintf("box %s: healthcheck: this supervisor has no health checks", c.ID))
		}
		for _, d := range c.Declared.DependsOn {
			if d.Condition == ConditionHealthy {
				why = append(why, fmt.Sprintf("box %s: depends_on %s: condition healthy needs health checks, which this supervisor does not have", c.ID, d.ID))
			}
		}
	}
	if len(why) == 0 {
		return nil
	}
	return messages.Errorf(messages.ErrBadSpec, "cannot apply %s: %s", p.Manifest.Path, strings.Join(why, "; "))
}

// Outcome is what Apply did to one box.
type Outcome struct {
	ID     string
	Action Action
	// Err is the failure, or nil. A box skipped because a dependency
	// failed has an Err that says so.
	Err error
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Parallel bounds the operations in flight at once; 0 means no bound
	// (every box of a wave at once).
	Parallel int
	// Progress, when set, is called once per box as its operation ends,
	// from the goroutine that ran it (calls may be concurrent).
	Progress func(Outcome)
}

// Apply carries out the plan: it checks the backend's capabilities, removes
// the boxes the file no longer declares, stops and removes the boxes to
// replace (dependents first), then goes wave by wave: every box of a wave
// is created, started or updated at once, and the next wave begins when the
// whole wave is done. A box whose dependency failed is skipped. It returns
// every box's outcome, and an error joining the failures.
func Apply(ctx context.Context, b Backend, p *Plan, opts ApplyOptions) ([]Outcome, error) {
	if err := Check(p, b.Capabilities()); err != nil {
		return nil, err
	}
	a := &applier{b: b, opts: opts, plan: p, failed: map[string]bool{}}
	if opts.Parallel > 0 {
		a.sem = make(chan struct{}, opts.Parallel)
	}
	var removals []Change
	byWave := make([][]Change, len(p.Manifest.Waves))
	for _, c := range p.Changes {
		if c.Action == ActionRemove {
			removals = append(removals, c)
			continue
		}
		byWave[c.Wave] = append(byWave[c.Wave], c)
	}
	a.run(ctx, removals, func(ctx context.Context, c Change) error { return b.Remove(ctx, c.ID) })
	for w := len(byWave) - 1; w >= 0; w-- { // dependents go first
		var replaced []Change
		for _, c := range byWave[w] {
			if c.Action == ActionReplace {
				replaced = append(replaced, c)
			}
		}
		a.runQuiet(ctx, replaced, func(ctx context.Context, c Change) error { return b.Remove(ctx, c.ID) })
	}
	for _, wave := range byWave {
		a.run(ctx, wave, a.bring)
	}
	var errs []error
	for _, o := range a.outcomes {
		if o.Err != nil {
			errs = append(errs, o.Err)
		}
	}
	return a.outcomes, errors.Join(errs...)
}

// applier is one Apply in progress.
type applier struct {
	b    Backend
	opts ApplyOptions
	plan *Plan
	sem  chan struct{}

	mu       sync.Mutex
	failed   map[string]bool // boxes whose operation failed or was skipped
	outcomes []Outcome
}

// bring makes one declared box as declared: its dependencies are ready (an
// earlier wave) and, where asked, healthy.
func (a *applier) bring(ctx context.Context, c Change) error {
	a.mu.Lock()
	for _, d := range c.Declared.DependsOn {
		if a.failed[d.ID] {
			a.mu.Unlock()
			return messages.Errorf(messages.ErrStartFailed, "box %s: not started: its dependency %s failed", c.ID, d.ID)
		}
	}
	a.mu.Unlock()
	for _, d := range c.Declared.DependsOn {
		if d.Condition == ConditionHealthy {
			if err := a.b.WaitHealthy(ctx, d.ID); err != nil {
				return fmt.Errorf("box %s: waiting for %s to be healthy: %w", c.ID, d.ID, err)
			}
		}
	}
	labels := c.Declared.Labels(a.plan.Manifest.ApplyID)
	switch c.Action {
	case ActionCreate, ActionReplace:
		return a.b.Create(ctx, c.Declared, labels)
	case ActionUpdate:
		if err := a.b.Update(ctx, c.Declared, labels); err != nil {
			return err
		}
		if c.Current != nil && c.Current.State.AtRest() {
			return a.b.StartExisting(ctx, c.ID) // as an unchanged box at rest would be
		}
		return nil
	case ActionStart:
		return a.b.StartExisting(ctx, c.ID)
	}
	return nil
}

// run carries out op for each change at once (within the bound), records
// and reports each outcome, and returns when all are done.
func (a *applier) run(ctx context.Context, changes []Change, op func(context.Context, Change) error) {
	a.each(ctx, changes, op, true)
}

// runQuiet is run for the first half of a replacement: a failure is
// recorded (the box is then not created again) but no outcome is added
// for it on success.
func (a *applier) runQuiet(ctx context.Context, changes []Change, op func(context.Context, Change) error) {
	a.each(ctx, changes, op, false)
}

func (a *applier) each(ctx context.Context, changes []Change, op func(context.Context, Change) error, report bool) {
	var wg sync.WaitGroup
	for _, c := range changes {
		a.mu.Lock()
		removalFailed := report && a.failed[c.ID] // a replacement whose removal failed
		a.mu.Unlock()
		if removalFailed {
			continue
		}
		if c.Action == ActionNone {
			a.record(Outcome{ID: c.ID, Action: c.Action})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.sem != nil {
				select {
				case a.sem <- struct{}{}:
					defer func() { <-a.sem }()
				case <-ctx.Done():
					a.record(Outcome{ID: c.ID, Action: c.Action, Err: fmt.Errorf("box %s: %w", c.ID, ctx.Err())})
					return
				}
			}
			err := op(ctx, c)
			if err != nil && !strings.Contains(err.Error(), c.ID) {
				err = fmt.Errorf("box %s: %w", c.ID, err)
			}
			if err != nil || report {
				a.record(Outcome{ID: c.ID, Action: c.Action, Err: err})
			}
		}()
	}
	wg.Wait()
}

func (a *applier) record(o Outcome) {
	a.mu.Lock()
	if o.Err != nil {
		a.failed[o.ID] = true
	}
	a.outcomes = append(a.outcomes, o)
	a.mu.Unlock()
	if a.opts.Progress != nil {
		a.opts.Progress(o)
	}
}
