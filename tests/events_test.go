package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// eventLog records every lifecycle event a supervisor publishes, in order,
// and lets a test wait for a condition over them.
type eventLog struct {
	mu      sync.Mutex
	evs     []messages.Event
	changed chan struct{} // closed and replaced on every add
}

func (l *eventLog) add(ev messages.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// snapshot returns the events so far, and a channel closed at the next one.
func (l *eventLog) snapshot() ([]messages.Event, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return append([]messages.Event(nil), l.evs...), l.changed
}

// all returns the events so far.
func (l *eventLog) all() []messages.Event {
	evs, _ := l.snapshot()
	return evs
}

// waitFor blocks until cond holds over the events, or fails the test after
// waitTimeout with the events seen.
func (l *eventLog) waitFor(t *testing.T, what string, cond func([]messages.Event) bool) []messages.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		evs, changed := l.snapshot()
		if cond(evs) {
			return evs
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("%s: not seen within %s; events: %s", what, waitTimeout, describe(evs))
		}
	}
}

// waitForEvent waits until at least n events of type T for box id arrived
// and returns them.
func waitForEvent[T messages.Event](t *testing.T, l *eventLog, id string, n int) []T {
	t.Helper()
	var zero T
	what := fmt.Sprintf("%d %s event(s) for %q", n, zero.Kind(), id)
	evs := l.waitFor(t, what, func(evs []messages.Event) bool { return len(eventsOf[T](evs, id)) >= n })
	return eventsOf[T](evs, id)
}

// eventsOf filters the events of type T about box id.
func eventsOf[T messages.Event](evs []messages.Event, id string) []T {
	var out []T
	for _, ev := range evs {
		if e, ok := ev.(T); ok && ev.Box() == id {
			out = append(out, e)
		}
	}
	return out
}

// kindsOf lists the kinds of box id's events, in order.
func kindsOf(evs []messages.Event, id string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Box() == id {
			out = append(out, ev.Kind())
		}
	}
	return out
}

func describe(evs []messages.Event) string {
	parts := make([]string, 0, len(evs))
	for _, ev := range evs {
		parts = append(parts, fmt.Sprintf("%s(%s)%+v", ev.Kind(), ev.Box(), ev))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
