package tests

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// TestRemoveRightBehindStartAnswers sends a StartBox and a forced Remove for
// the same new box straight to the root, back to back, so that the Remove
// reaches the box actor while the box is still being created or spawned.
// Both requests must be answered, and the box must end up removed.
func TestRemoveRightBehindStartAnswers(t *testing.T) {
	h := newHarness(t)
	root := h.sup.System().Root
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("rm%d", i)
		h.procs.useBox(id)
		spec := h.sleepSpec()
		spec.BoxID, spec.Engine, spec.Version = id, messages.EngineProcess, messages.SpecVersion
		start := root.RequestFuture(h.sup.Root(), &messages.StartBox{ID: id, Spec: spec}, replyTimeout)
		remove := root.RequestFuture(h.sup.Root(), &messages.Remove{ID: id, Force: true}, replyTimeout)

		if _, err := replyStatus(start.Result()); err != nil && !isTyped(err) {
			t.Errorf("%s: Start: %v", id, err)
		}
		st, err := replyStatus(remove.Result())
		if err != nil && !isTyped(err) {
			t.Fatalf("%s: Remove right behind Start got no answer: %v (box state %q)", id, err, h.status(id).State)
		}
		if err != nil {
			t.Logf("%s: Remove answered %v (state %q)", id, err, st.State)
		}
		eventually(t, id+" to be removed", func() (bool, string) {
			_, err := h.sup.Remove(h.ctx(), id, true)
			return errors.Is(err, messages.ErrNotFound), fmt.Sprint(err)
		})
		if h.boxDirExists(id) {
			t.Errorf("%s: box directory left behind", id)
		}
	}
}

// replyStatus unpacks a BoxStatus reply from a raw future.
func replyStatus(v any, err error) (messages.BoxStatus, error) {
	if err != nil {
		return messages.BoxStatus{}, err
	}
	switch st := v.(type) {
	case messages.BoxStatus:
		return st, messages.Err(st.Err)
	case *messages.BoxStatus:
		return *st, messages.Err(st.Err)
	}
	return messages.BoxStatus{}, fmt.Errorf("unexpected reply %T", v)
}

func isTyped(err error) bool {
	var e *messages.Error
	return errors.As(err, &e)
}

// TestRecreateRightAfterRemove removes a box and at once creates a new box
// with the same ID, many times over. The new box must stay reachable: the
// old actor's termination must not be mistaken for the new one's (both
// actors have the same name), or the new box, its directory and its shim
// would be orphaned.
func TestRecreateRightAfterRemove(t *testing.T) {
	h := newHarness(t)
	const id = "phoenix"
	h.procs.useBox(id)
	staleExists := 0
	for i := 0; i < 30; i++ {
		var st messages.BoxStatus
		eventually(t, fmt.Sprintf("round %d: Start(%s) to succeed", i, id), func() (bool, string) {
			var err error
			st, err = h.sup.Start(h.ctx(), messages.StartBox{ID: id, Spec: h.sleepSpec()})
			switch {
			case err == nil, errors.Is(err, messages.ErrBusy):
			case errors.Is(err, messages.ErrAlreadyExists) && i > 0:
				staleExists++ // reported below; retried to reach the next check
			default:
				t.Fatalf("round %d: Start: %v", i, err)
			}
			return err == nil, fmt.Sprint(err)
		})
		shim := h.procs.track(st.PID, "shim of "+id)
		removed, err := h.sup.Remove(h.ctx(), id, true)
		if err != nil {
			t.Fatalf("round %d: Remove(force) of the box just started: %v (directory exists: %v, shim running: %v)",
				i, err, h.boxDirExists(id), shim.alive())
		}
		if removed.LastExit == nil || !shim.gone() {
			t.Fatalf("round %d: Remove answered %+v while the shim existed: %v", i, removed, !shim.gone())
		}
	}
	if staleExists > 0 {
		t.Errorf("Start answered ErrAlreadyExists %d times for an ID whose Remove had already succeeded (ErrBusy, \"retry\", would be right)", staleExists)
	}
}

// TestRequestsRacingRemoveAreAnswered sends Status, Metrics and MetricsAll
// back to back while the box they name is being removed. Every one must be
// answered (with the box's status, ErrNotFound or ErrNotRunning): a request
// routed to a box actor that is about to stop must not be dropped with its
// mailbox.
func TestRequestsRacingRemoveAreAnswered(t *testing.T) {
	h := newHarness(t)
	c := newCallChecker(t, replyTimeout)
	defer c.report()
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("doomed%d", i)
		h.startSleeper(id)
		removed := make(chan struct{})
		var wg sync.WaitGroup
		for _, op := range []string{"Status", "Metrics", "MetricsAll"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Keep asking until the Remove has answered, and once more.
				for last := false; !last; {
					select {
					case <-removed:
						last = true
					default:
					}
					_ = c.call(op+" "+id, func(ctx context.Context) error {
						var err error
						switch op {
						case "Status":
							_, err = h.sup.Status(ctx, id)
						case "Metrics":
							_, err = h.sup.Metrics(ctx, id)
						default:
							_, err = h.sup.MetricsAll(ctx)
						}
						return err
					})
					if c.hung.Load() {
						return
					}
				}
			}()
		}
		_ = c.call("Remove "+id, func(ctx context.Context) error {
			_, err := h.sup.Remove(ctx, id, true)
			return err
		})
		close(removed)
		wg.Wait()
		if c.hung.Load() {
			break
		}
	}
}

// TestMetricsAllRacingCreateAndRemove runs MetricsAll back to back while
// boxes are created and removed at once, many times over. Each MetricsAll
// must be answered even when a box it asked goes away before replying (its
// request then goes to dead letters, or is dropped with the stopping
// actor's mailbox).
func TestMetricsAllRacingCreateAndRemove(t *testing.T) {
	h := newHarness(t)
	c := newCallChecker(t, replyTimeout)
	defer c.report()
	stop := make(chan struct{})
	metricsDone := metricsLoop(h, c, stop)
	const ids, rounds = 4, 300
	for round := 0; round < rounds && !c.hung.Load(); round++ {
		parallel(2*ids, func(k int) {
			id := fmt.Sprintf("flicker%d", k%ids)
			h.procs.useBox(id)
			if k < ids {
				_ = c.call("Start "+id, func(ctx context.Context) error {
					_, err := h.sup.Start(ctx, messages.StartBox{ID: id, Spec: h.sleepSpec()})
					return err
				})
				return
			}
			_ = c.call("Remove "+id, func(ctx context.Context) error {
				_, err := h.sup.Remove(ctx, id, true)
				return err
			})
		})
	}
	close(stop)
	calls, slowest := metricsDone()
	t.Logf("%d MetricsAll calls, slowest %v", calls, slowest)
}
