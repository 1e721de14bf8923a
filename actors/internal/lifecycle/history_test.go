package lifecycle

import (
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	p := messages.RestartPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, NoJitter: true}
	cases := []struct {
		step int
		want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second}, // capped
		{40, time.Second},
	}
	for _, c := range cases {
		if got := backoffDelay(p, c.step, nil); got != c.want {
			t.Errorf("step %d: %v, want %v", c.step, got, c.want)
		}
	}
	if got := backoffDelay(messages.RestartPolicy{InitialBackoff: -1, MaxBackoff: time.Second}, 3, nil); got != 0 {
		t.Errorf("negative initial backoff: %v, want 0", got)
	}
}

// TestBackoffJitterBounds: full jitter is uniform in [0, ceiling]: the
// extremes are reachable and nothing lies outside.
func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	p := messages.RestartPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second}
	for step := 0; step < 12; step++ {
		ceiling := min(100*time.Millisecond<<step, 30*time.Second)
		if got := backoffDelay(p, step, func(n int64) int64 { return n }); got != ceiling {
			t.Errorf("step %d, largest jitter: %v, want the ceiling %v", step, got, ceiling)
		}
		if got := backoffDelay(p, step, func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("step %d, smallest jitter: %v, want 0", step, got)
		}
		env := newFakeEnv(uint64(step))
		for i := 0; i < 200; i++ {
			if got := backoffDelay(p, step, env.Jitter); got < 0 || got > ceiling {
				t.Fatalf("step %d: %v outside [0, %v]", step, got, ceiling)
			}
		}
	}
}

func TestHistoryDecide(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fail := messages.ExitRecord{ExitCode: 1}
	ok := messages.ExitRecord{ExitCode: 0}
	noJitter := func(n int64) int64 { return n }
	policy := messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 2, Window: time.Minute,
		InitialBackoff: time.Second, MaxBackoff: 8 * time.Second, StableAfter: 10 * time.Second, NoJitter: true}
	type step struct {
		at      time.Duration // since t0
		exit    messages.ExitRecord
		uptime  time.Duration
		restart bool
		limit   bool
		delay   time.Duration
		attempt int
	}
	cases := []struct {
		name   string
		policy messages.RestartPolicy
		steps  []step
	}{
		{"on-failure ignores a clean exit", policy, []step{
			{at: 0, exit: ok, uptime: time.Second},
		}},
		{"intensity limit", policy, []step{
			{at: 0, exit: fail, restart: true, delay: time.Second, attempt: 1},
			{at: time.Second, exit: fail, restart: true, delay: 2 * time.Second, attempt: 2},
			{at: 2 * time.Second, exit: fail, limit: true, attempt: 2},
		}},
		{"window expiry forgets old restarts", policy, []step{
			{at: 0, exit: fail, restart: true, delay: time.Second, attempt: 1},
			{at: time.Second, exit: fail, restart: true, delay: 2 * time.Second, attempt: 2},
			{at: 60500 * time.Millisecond, exit: fail, restart: true, delay: 4 * time.Second, attempt: 2},
		}},
		{"a stable run resets the backoff", policy, []step{
			{at: 0, exit: fail, restart: true, delay: time.Second, attempt: 1},
			{at: 30 * time.Second, exit: fail, uptime: 11 * time.Second, restart: true, delay: time.Second, attempt: 2},
		}},
		{"always restarts a clean exit", messages.RestartPolicy{Mode: messages.RestartAlways, NoJitter: true, InitialBackoff: time.Second}, []step{
			{at: 0, exit: ok, restart: true, delay: time.Second, attempt: 1},
		}},
		{"unlimited restarts", messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: -1, InitialBackoff: -1}, []step{
			{at: 0, exit: ok, restart: true, attempt: 1},
			{at: 0, exit: ok, restart: true, attempt: 2},
			{at: 0, exit: ok, restart: true, attempt: 3},
			{at: 0, exit: ok, restart: true, attempt: 4},
			{at: 0, exit: ok, restart: true, attempt: 5},
			{at: 0, exit: ok, restart: true, attempt: 6},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h History
			for i, s := range c.steps {
				d := h.decide(c.policy, s.exit, s.uptime, t0.Add(s.at), noJitter)
				if d.restart != s.restart || d.exceeded != s.limit || d.delay != s.delay || d.attempt != s.attempt {
					t.Fatalf("step %d: %+v, want restart=%v limit=%v delay=%v attempt=%d", i, d, s.restart, s.limit, s.delay, s.attempt)
				}
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for i, w := range want {
		if got := retryDelay(i + 1); got != w {
			t.Errorf("retryDelay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := retryDelay(100); got != 30*time.Second {
		t.Errorf("retryDelay(100) = %v, want the 30s cap", got)
	}
}

// TestRestartLimitHoldsAcrossSupervisors: each CLI command that opens the
// home is a supervisor of its own, with a history of its own. A box that
// crashes between commands was restarted by every command, without end,
// because each one started counting from zero (found by a trial: on-failure
// with --max-restarts 1 reached 7 restarts in 5 s). The record carries the
// restarts within the window, and the next supervisor counts them.
func TestRestartLimitHoldsAcrossSupervisors(t *testing.T) {
	t.Parallel()
	policy := messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 1, InitialBackoff: -1}
	first := newDriver(t, true)
	first.feed(Create{W: first.waiter(), Opts: Options{Restart: policy}})
	first.feed(Prepared{}, SpecDurable{})
	first.ackAll()
	first.feed(Spawned{Gen: 1, Proc: Proc{Identity: messages.Identity{PID: 101, StartTime: 1, BootID: "b"}, Cgroup: "/cg/web/gen-1"}})
	first.ackAll()
	first.feed(Ready{Gen: 1}, ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 1}})
	first.expectPhase(Restarting)
	first.ackAll()
	first.feed(RestartTimer{Gen: 1})
	first.ackAll()
	first.feed(Spawned{Gen: 2, Proc: Proc{Identity: messages.Identity{PID: 102, StartTime: 2, BootID: "b"}, Cgroup: "/cg/web/gen-2"}})
	first.ackAll()
	first.feed(Ready{Gen: 2})
	first.ackAll()
	first.expectPhase(Running)
	persisted := find[Persist](first.out)
	rec := persisted[len(persisted)-1].Rec
	if len(rec.RecentRestarts) != 1 {
		t.Fatalf("the record of a restarted box carries %d recent restarts, want 1: %+v", len(rec.RecentRestarts), rec)
	}

	// The first supervisor is gone; generation 2 crashes; the next one
	// opens the home and finds it gone.
	next := newDriver(t, false)
	next.env.now = first.env.now.Add(time.Second)
	next.feed(Loaded{Opts: Options{Restart: policy}, Rec: rec})
	next.expectPhase(Adopting)
	next.feed(Adopted{Gen: 3, Outcome: Vanished, Exit: messages.ExitRecord{ExitCode: 1}})
	next.expectPhase(Failed)
	if st := next.m.Status(nil); !strings.Contains(st.Reason, "restart limit exceeded") {
		t.Fatalf("status = %+v, want failed for the restart limit", st)
	}

	// Outside the window the same record allows a restart again.
	later := newDriver(t, false)
	later.env.now = first.env.now.Add(2 * policy.WithDefaults().Window)
	later.feed(Loaded{Opts: Options{Restart: policy}, Rec: rec})
	later.feed(Adopted{Gen: 3, Outcome: Vanished, Exit: messages.ExitRecord{ExitCode: 1}})
	later.expectPhase(Restarting)
}

// TestSnapshotKeepsWhatTheLimitNeeds: the record carries the latest
// restarts up to the policy's limit, and none for an unlimited policy, so
// that a crash loop does not grow state.json.
func TestSnapshotKeepsWhatTheLimitNeeds(t *testing.T) {
	t.Parallel()
	var h History
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: -1, InitialBackoff: -1}
	for i := range 50 {
		h.decide(p, messages.ExitRecord{ExitCode: 1}, 0, now.Add(time.Duration(i)*time.Millisecond), func(int64) int64 { return 0 })
	}
	if times, _ := h.snapshot(-1); len(times) != 0 {
		t.Errorf("unlimited policy: %d times kept, want none", len(times))
	}
	times, _ := h.snapshot(3)
	if len(times) != 3 || !times[2].Equal(now.Add(49*time.Millisecond)) {
		t.Errorf("limit 3: kept %v, want the latest 3", times)
	}
}
