package main

import (
	"context"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/declare"
	"github.com/boxsup/boxsup/messages"
)

// applyTarget is declare.Backend over a control.Backend. The supervisor
// stores labels (StartBox.Labels, carried on every status) and updates a
// box's restart policy, stop timeout and labels in place (UpdateBox), which
// is exactly what a declaration's config digest covers; everything else a
// declaration says is in its spec digest, whose change declare turns into
// a replacement, never an update. Health checks are not wired here yet: a
// plan that needs them is refused by declare before anything changes.
type applyTarget struct {
	b control.Backend
}

// Capabilities implements declare.Backend.
func (t applyTarget) Capabilities() declare.Capabilities {
	return declare.Capabilities{Labels: true, Update: true}
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

// Create implements declare.Backend: the box is started with labels.
func (t applyTarget) Create(ctx context.Context, box *declare.DeclaredBox, labels map[string]string) error {
	if box.HealthCheck != nil {
		return unsupported("health checks")
	}
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

// WaitHealthy implements declare.Backend.
func (t applyTarget) WaitHealthy(context.Context, string) error {
	return unsupported("health checks")
}

func unsupported(what string) error {
	return messages.Errorf(messages.ErrBadSpec, "this supervisor does not support %s yet", what)
}
