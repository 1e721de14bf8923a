package declare

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/boxsup/boxsup/messages"
)

// fakeBackend records operations in order and keeps boxes in memory.
type fakeBackend struct {
	caps Capabilities

	mu       sync.Mutex
	boxes    map[string]Existing
	ops      []string            // "create web", "remove old", ...
	failOn   map[string]bool     // operation strings that fail
	inFlight atomic.Int32        // operations running now
	peak     atomic.Int32        // most operations seen at once
	gate     chan struct{}       // when set, each operation waits on it
	healthy  map[string]struct{} // boxes WaitHealthy was asked for
}

func newFake() *fakeBackend {
	return &fakeBackend{
		caps:    Capabilities{Labels: true, Update: true, HealthChecks: true},
		boxes:   map[string]Existing{},
		failOn:  map[string]bool{},
		healthy: map[string]struct{}{},
	}
}

func (f *fakeBackend) Capabilities() Capabilities { return f.caps }

func (f *fakeBackend) List(context.Context) ([]Existing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Existing
	for _, id := range slices.Sorted(maps.Keys(f.boxes)) {
		out = append(out, f.boxes[id])
	}
	return out, nil
}

// op records an operation and fails it if asked to.
func (f *fakeBackend) op(name string) error {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, name)
	if f.failOn[name] {
		return messages.Errorf(messages.ErrStartFailed, "%s: injected failure", name)
	}
	return nil
}

func (f *fakeBackend) Create(_ context.Context, b *DeclaredBox, labels map[string]string) error {
	if err := f.op("create " + b.ID()); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.boxes[b.ID()]; ok {
		return messages.Errorf(messages.ErrAlreadyExists, "%s", b.ID())
	}
	f.boxes[b.ID()] = Existing{ID: b.ID(), State: messages.StateRunning, Labels: labels}
	return nil
}

func (f *fakeBackend) StartExisting(_ context.Context, id string) error {
	if err := f.op("start " + id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.boxes[id]
	e.State = messages.StateRunning
	f.boxes[id] = e
	return nil
}

func (f *fakeBackend) Update(_ context.Context, b *DeclaredBox, labels map[string]string) error {
	if err := f.op("update " + b.ID()); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.boxes[b.ID()]
	e.Labels = labels
	f.boxes[b.ID()] = e
	return nil
}

func (f *fakeBackend) Remove(_ context.Context, id string) error {
	if err := f.op("remove " + id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.boxes[id]; !ok {
		return fmt.Errorf("remove %s: not found", id)
	}
	delete(f.boxes, id)
	return nil
}

func (f *fakeBackend) WaitHealthy(_ context.Context, id string) error {
	f.mu.Lock()
	f.healthy[id] = struct{}{}
	f.mu.Unlock()
	return f.op("healthy " + id)
}

// opsLog returns the operations so far.
func (f *fakeBackend) opsLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}
