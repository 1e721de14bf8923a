package actors

import (
	"context"
	"errors"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// Wait returns a channel that receives, once, how box id comes to rest:
// exited or failed (a box its restart policy will start again is not at
// rest), or at once when it is at rest already. Like containerd's
// task.Wait it may be called before or after the box is started and never
// misses an exit: it follows the box's events, which carry the state each
// transition led to, from before it looks at the box's status. The channel
// is closed after its value, or without one when ctx ends first, the box
// is removed, or the supervisor shuts down first (Shutdown with
// LeaveRunning leaves a detached box running: no exit comes).
//
// For a fleet, Subscribe with an EventFilter and watch Header().State:
// every event that leaves a box at rest (State.AtRest) is that box's exit.
func (s *Supervisor) Wait(ctx context.Context, id string) (<-chan messages.BoxExit, error) {
	if err := layout.ValidateID(id); err != nil {
		return nil, err
	}
	if s.core.shutting.Load() {
		return nil, messages.Errorf(messages.ErrShuttingDown, "nothing more is waited for")
	}
	events := make(chan messages.Event, 16)
	overflow := make(chan struct{}, 1)
	cancel := s.Subscribe(EventFilter{Boxes: []string{id}}, func(ev messages.Event) {
		select {
		case events <- ev:
		default:
			// A waiter that fell behind looks at the status again.
			select {
			case overflow <- struct{}{}:
			default:
			}
		}
	})
	out := make(chan messages.BoxExit, 1)
	go func() {
		defer close(out)
		defer cancel()
		check := func() bool { // the status, for what happened before the events
			st, err := s.Status(ctx, id)
			switch {
			case err == nil && st.State.AtRest():
				out <- exitOf(st)
				return true
			case err != nil && !errors.Is(err, messages.ErrNotFound):
				return ctx.Err() != nil // a transient failure: the events go on
			}
			return false
		}
		if check() {
			return
		}
		for {
			select {
			case ev := <-events:
				h := ev.Header()
				switch e := ev.(type) {
				case messages.BoxRemoved:
					return
				case messages.BoxExited:
					if h.State.AtRest() {
						exit := e.Exit
						out <- messages.BoxExit{ID: id, Generation: h.Generation, State: h.State, Exit: &exit, Reason: exit.Reason, At: h.At}
						return
					}
				case messages.BoxFailed:
					out <- messages.BoxExit{ID: id, Generation: h.Generation, State: h.State, Reason: e.Reason, At: h.At}
					return
				}
			case <-overflow:
				if check() {
					return
				}
			case <-ctx.Done():
				return
			case <-s.core.closed:
				return // no event comes any more
			}
		}
	}()
	return out, nil
}

// exitOf is the BoxExit of a box at rest.
func exitOf(st messages.BoxStatus) messages.BoxExit {
	at := st.CreatedAt
	if st.LastExit != nil {
		at = st.LastExit.FinishedAt
	}
	return messages.BoxExit{ID: st.ID, Generation: st.Generation, State: st.State, Exit: st.LastExit, Reason: st.Reason, At: at}
}
