package nodeloss

import (
	"errors"
	"testing"
	"time"
)

// step is one input to a Fence at an offset from t0, and what must hold
// after it.
type step struct {
	at        time.Duration
	op        string // "renew" (ValidUntil = t0+arg), "gone", "tick", "done", "join" (ValidUntil = t0+arg)
	arg       time.Duration
	action    Action // for "tick"
	state     FenceState
	accepting bool
}

func TestFenceTable(t *testing.T) {
	t.Parallel()
	tm := Timing{LeaseTTL: 3 * s, FenceAfter: 10 * s, FailoverAfter: 20 * s}
	cases := []struct {
		name  string
		steps []step
	}{
		{"renewals keep it holding", []step{
			{at: 1 * s, op: "renew", arg: 4 * s, state: Holding, accepting: true},
			{at: 2 * s, op: "renew", arg: 5 * s, state: Holding, accepting: true},
			{at: 14 * s, op: "tick", action: None, state: Holding, accepting: false},
		}},
		{"fences once at ValidUntil plus fence-after", []step{
			{at: 0, op: "tick", action: None, state: Holding, accepting: true},
			{at: 4 * s, op: "tick", action: None, state: Holding, accepting: false},
			{at: 13*s - 1, op: "tick", action: None, state: Holding},
			{at: 13 * s, op: "tick", action: StartFence, state: Fencing},
			{at: 14 * s, op: "tick", action: None, state: Fencing},
			{at: 15 * s, op: "done", state: Fenced},
			{at: 16 * s, op: "renew", arg: 19 * s, state: Fenced},
			{at: 17 * s, op: "tick", action: None, state: Fenced},
			{at: 18 * s, op: "join", arg: 21 * s, state: Holding, accepting: true},
			{at: 40 * s, op: "tick", action: StartFence, state: Fencing},
		}},
		{"a late renewal before the deadline cancels the fence", []step{
			{at: 10 * s, op: "tick", action: None, state: Holding},
			{at: 11 * s, op: "renew", arg: 14 * s, state: Holding, accepting: true},
			{at: 13 * s, op: "tick", action: None, state: Holding, accepting: true},
			{at: 24 * s, op: "tick", action: StartFence, state: Fencing},
		}},
		{"an older renewal answer does not move ValidUntil back", []step{
			{at: 1 * s, op: "renew", arg: 9 * s, state: Holding, accepting: true},
			{at: 2 * s, op: "renew", arg: 5 * s, state: Holding, accepting: true},
			{at: 19 * s, op: "tick", action: StartFence, state: Fencing},
		}},
		{"gone: no new box at once, fence still at the deadline", []step{
			{at: 1 * s, op: "gone", state: Lost},
			{at: 2 * s, op: "tick", action: None, state: Lost},
			{at: 2 * s, op: "renew", arg: 30 * s, state: Lost},
			{at: 13 * s, op: "tick", action: StartFence, state: Fencing},
		}},
		{"gone after the deadline fences at the next tick", []step{
			{at: 20 * s, op: "gone", state: Lost},
			{at: 20 * s, op: "tick", action: StartFence, state: Fencing},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Unix(1_000_000, 0)
			f := NewFence(tm, t0.Add(tm.LeaseTTL))
			for i, st := range c.steps {
				now := t0.Add(st.at)
				var got Action
				switch st.op {
				case "renew":
					f.Renewed(t0.Add(st.arg))
				case "gone":
					f.Gone()
				case "tick":
					got = f.Tick(now)
				case "done":
					f.FenceDone()
				case "join":
					f.Joined(t0.Add(st.arg))
				}
				if got != st.action || f.State() != st.state {
					t.Fatalf("step %d (%s at %v): action %v state %s; want %v %s (%v)", i, st.op, st.at, got, f.State(), st.action, st.state, f)
				}
				err := f.Accepting(now)
				if st.accepting != (err == nil) {
					t.Fatalf("step %d: Accepting = %v, want accepting=%v", i, err, st.accepting)
				}
				if err != nil && !errors.Is(err, ErrNotAccepting) {
					t.Fatalf("step %d: untyped refusal %v", i, err)
				}
			}
		})
	}
}
