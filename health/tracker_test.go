package health

import (
	"fmt"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// step is one result fed to a Tracker and what must follow.
type step struct {
	at      time.Duration // the probe's start, after since
	outcome messages.HealthOutcome
	state   messages.HealthState // after the step
	streak  int
	first   bool // FirstHealthy
	counted bool
}

const (
	pass      = messages.HealthPass
	fail      = messages.HealthFail
	perr      = messages.HealthError
	starting  = messages.HealthStarting
	healthy   = messages.HealthHealthy
	unhealthy = messages.HealthUnhealthy
)

func TestTrackerTable(t *testing.T) {
	t.Parallel()
	s := time.Second
	cases := []struct {
		name  string
		check messages.HealthCheck
		steps []step
	}{
		{"first pass is healthy and first", messages.HealthCheck{}, []step{
			{1 * s, pass, healthy, 0, true, true},
			{2 * s, pass, healthy, 0, false, true},
		}},
		{"retries failures make it unhealthy from starting", messages.HealthCheck{Retries: 3}, []step{
			{1 * s, fail, starting, 1, false, true},
			{2 * s, fail, starting, 2, false, true},
			{3 * s, fail, unhealthy, 3, false, true},
			{4 * s, fail, unhealthy, 4, false, true},
		}},
		{"a pass resets the streak", messages.HealthCheck{Retries: 2}, []step{
			{1 * s, pass, healthy, 0, true, true},
			{2 * s, fail, healthy, 1, false, true},
			{3 * s, pass, healthy, 0, false, true},
			{4 * s, fail, healthy, 1, false, true},
			{5 * s, fail, unhealthy, 2, false, true},
			{6 * s, pass, healthy, 0, false, true},
		}},
		{"one retry: the first counted failure is unhealthy", messages.HealthCheck{Retries: 1}, []step{
			{1 * s, pass, healthy, 0, true, true},
			{2 * s, fail, unhealthy, 1, false, true},
		}},
		{"default retries is 3", messages.HealthCheck{}, []step{
			{1 * s, fail, starting, 1, false, true},
			{2 * s, fail, starting, 2, false, true},
			{3 * s, fail, unhealthy, 3, false, true},
		}},
		{"failures in the start period do not count", messages.HealthCheck{Retries: 1, StartPeriod: 10 * s}, []step{
			{1 * s, fail, starting, 0, false, false},
			{9 * s, fail, starting, 0, false, false},
			{10 * s, fail, unhealthy, 1, false, true}, // the period is [since, since+10s)
		}},
		{"the first pass ends the start period", messages.HealthCheck{Retries: 1, StartPeriod: time.Minute}, []step{
			{1 * s, fail, starting, 0, false, false},
			{2 * s, pass, healthy, 0, true, true},
			{3 * s, fail, unhealthy, 1, false, true},
		}},
		{"a first pass after unhealthy is still the first", messages.HealthCheck{Retries: 1}, []step{
			{1 * s, fail, unhealthy, 1, false, true},
			{2 * s, pass, healthy, 0, true, true},
		}},
		{"errors change nothing", messages.HealthCheck{Retries: 2}, []step{
			{1 * s, perr, starting, 0, false, false},
			{2 * s, fail, starting, 1, false, true},
			{3 * s, perr, starting, 1, false, false},
			{4 * s, perr, starting, 1, false, false},
			{5 * s, fail, unhealthy, 2, false, true},
			{6 * s, perr, unhealthy, 2, false, false},
			{7 * s, pass, healthy, 0, true, true},
			{8 * s, perr, healthy, 0, false, false},
		}},
		{"an unknown outcome is not a verdict", messages.HealthCheck{Retries: 1}, []step{
			{1 * s, messages.HealthOutcome("maybe"), starting, 0, false, false},
		}},
	}
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := NewTracker(c.check, since)
			if tr.State() != starting {
				t.Fatalf("a new tracker is %q", tr.State())
			}
			for i, st := range c.steps {
				from := tr.State()
				got := tr.Observe(messages.HealthResult{Outcome: st.outcome, Start: since.Add(st.at), End: since.Add(st.at + 10*time.Millisecond)})
				want := Transition{From: from, To: st.state, FirstHealthy: st.first, Counted: st.counted}
				if got != want {
					t.Fatalf("step %d (%s at +%v): %+v, want %+v", i, st.outcome, st.at, got, want)
				}
				if got.Changed() != (from != st.state) {
					t.Fatalf("step %d: Changed() = %v", i, got.Changed())
				}
				hs := tr.Status()
				if hs.State != st.state || hs.FailingStreak != st.streak {
					t.Fatalf("step %d: Status = %s streak %d, want %s streak %d", i, hs.State, hs.FailingStreak, st.state, st.streak)
				}
			}
		})
	}
}

func TestTrackerKeepsTheLastResults(t *testing.T) {
	t.Parallel()
	since := time.Unix(1000, 0)
	tr := NewTracker(messages.HealthCheck{}, since)
	for i := range messages.MaxHealthLog + 3 {
		tr.Observe(messages.HealthResult{Outcome: pass, Start: since.Add(time.Duration(i) * time.Second), Reason: fmt.Sprint(i)})
	}
	log := tr.Status().Log
	if len(log) != messages.MaxHealthLog {
		t.Fatalf("log holds %d results, want %d", len(log), messages.MaxHealthLog)
	}
	for i, r := range log {
		if want := fmt.Sprint(i + 3); r.Reason != want {
			t.Fatalf("log[%d] is result %s, want %s (oldest first)", i, r.Reason, want)
		}
	}
	log[0].Reason = "changed"
	if tr.Status().Log[0].Reason == "changed" {
		t.Fatal("Status shares its log with the tracker")
	}
}

func TestNextInterval(t *testing.T) {
	t.Parallel()
	since := time.Unix(1000, 0)
	c := messages.HealthCheck{TCP: "a:1", Interval: 30 * time.Second, StartInterval: time.Second, StartPeriod: time.Minute}.WithDefaults()
	for _, tc := range []struct {
		passed bool
		at     time.Duration
		want   time.Duration
	}{
		{false, 0, time.Second},
		{false, 59 * time.Second, time.Second},
		{false, time.Minute, 30 * time.Second},
		{true, time.Second, 30 * time.Second},
	} {
		if got := nextInterval(&c, since, tc.passed, since.Add(tc.at)); got != tc.want {
			t.Errorf("nextInterval(passed %v, +%v) = %v, want %v", tc.passed, tc.at, got, tc.want)
		}
	}
	noPeriod := messages.HealthCheck{TCP: "a:1"}.WithDefaults()
	if got := nextInterval(&noPeriod, since, false, since); got != messages.DefaultHealthInterval {
		t.Errorf("without a start period the interval is %v, want %v", got, messages.DefaultHealthInterval)
	}
}
