package main

import (
	"context"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/declare"
	"github.com/boxsup/boxsup/messages"
)

// applyTarget is declare.Backend over a control.Backend. Today's
// supervisor stores no labels, updates nothing in place and runs no health
// checks, so its Capabilities are all false and declare.Apply refuses every
// plan before acting (a dry run still shows the plan). Once StartBox and
// BoxStatus carry labels, Capabilities.Labels turns true here, Create passes
// the labels and List returns them; Update and health checks follow their
// own fields (see the package comment of declare).
type applyTarget struct {
	b control.Backend
}

// Capabilities implements declare.Backend.
func (t applyTarget) Capabilities() declare.Capabilities { return declare.Capabilities{} }

// List implements declare.Backend.
func (t applyTarget) List(ctx context.Context) ([]declare.Existing, error) {
	boxes, err := t.b.List(ctx, control.Selection{})
	if err != nil {
		return nil, err
	}
	out := make([]declare.Existing, len(boxes))
	for i, st := range boxes {
		out[i] = declare.Existing{ID: st.ID, State: st.State}
	}
	return out, nil
}

// Create implements declare.Backend. Labels it cannot store are refused,
// never dropped.
func (t applyTarget) Create(ctx context.Context, box *declare.DeclaredBox, labels map[string]string) error {
	if len(labels) > 0 {
		return unsupported("storing box labels")
	}
	if box.HealthCheck != nil {
		return unsupported("health checks")
	}
	_, err := t.b.Start(ctx, box.Start)
	return err
}

// StartExisting implements declare.Backend.
func (t applyTarget) StartExisting(ctx context.Context, id string) error {
	_, err := t.b.StartExisting(ctx, id)
	return err
}

// Update implements declare.Backend.
func (t applyTarget) Update(context.Context, *declare.DeclaredBox, map[string]string) error {
	return unsupported("updating a box in place")
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
