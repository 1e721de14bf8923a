package main

import (
	"context"
	"time"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/declare"
	"github.com/boxsup/boxsup/messages"
)

// applyTarget is declare.Backend over a control.Backend. The supervisor
// stores labels (StartBox.Labels, carried on every status) and updates a
// box's restart policy, stop timeout and labels in place (UpdateBox), which
// is exactly what a declaration's config digest covers; everything else a
// declaration says is in its spec digest, whose change declare turns into
// a replacement, never an update. A declared health check (and its
// ready_when) travels in StartBox.
type applyTarget struct {
	b control.Backend
}

// Capabilities implements declare.Backend.
func (t applyTarget) Capabilities() declare.Capabilities {
	return declare.Capabilities{Labels: true, Update: true, HealthChecks: true}
}

// List implements declare.Backend.
func (t applyTarget) List(ctx context.Context) ([]declare.Existing, error) {
	boxes, err := t.b.List(ctx, control.Selection{})
	if err != nil {
		return nil, err
	}
	out := make([]declare.Existing, len(boxes))
	for i, st := range boxes {
		out[i] = declare.Existing{ID: st.ID, State: st.State, Labels: st.Labels}
	}
	return out, nil
}

// Create implements declare.Backend: the box is started with labels (and
// its health check).
func (t applyTarget) Create(ctx context.Context, box *declare.DeclaredBox, labels map[string]string) error {
	req := box.Start
	req.Labels = labels
	_, err := t.b.Start(ctx, req)
	return err
}

// StartExisting implements declare.Backend.
func (t applyTarget) StartExisting(ctx context.Context, id string) error {
	_, err := t.b.StartExisting(ctx, id)
	return err
}

// Update implements declare.Backend: the box's restart policy, stop
// timeout and whole label set become the declaration's (labels set by hand
// on a declared box are replaced: the file is the truth for its boxes).
func (t applyTarget) Update(ctx context.Context, box *declare.DeclaredBox, labels map[string]string) error {
	restart, stop := box.Start.Restart, box.Start.StopTimeout
	_, err := t.b.Update(ctx, messages.UpdateBox{ID: box.ID(), Restart: &restart, StopTimeout: &stop, Labels: labels})
	return err
}

// Remove implements declare.Backend: stop within the box's stop timeout,
// then remove.
func (t applyTarget) Remove(ctx context.Context, id string) error {
	_, err := t.b.Remove(ctx, id, true)
	return err
}

// WaitHealthy implements declare.Backend: it returns once box id's health
// check has passed, as compose's service_healthy does; a box that turns
// unhealthy, has no check or is not running fails the wait. The box's
// status is polled (an external fact; the event stream needs a running
// supervise, which apply does not).
func (t applyTarget) WaitHealthy(ctx context.Context, id string) error {
	tick := time.NewTicker(healthPollInterval)
	defer tick.Stop()
	for {
		st, err := t.b.Status(ctx, id)
		switch {
		case err != nil:
			return err
		case st.Health == nil && st.State.Live():
			if st.State == messages.StateRunning {
				return messages.Errorf(messages.ErrBadSpec, "box %s has no health check to wait for", id)
			}
		case st.Health == nil:
			return messages.Errorf(messages.ErrNotRunning, "box %s is %s", id, st.State)
		case st.Health.State == messages.HealthHealthy:
			return nil
		case st.Health.State == messages.HealthUnhealthy:
			return messages.Errorf(messages.ErrStartFailed, "box %s is unhealthy (%d failed checks in a row)", id, st.Health.FailingStreak)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// healthPollInterval is how often WaitHealthy looks at a box's status.
const healthPollInterval = 100 * time.Millisecond
