package main

import (
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestPSUptimeOfAnAdoptedBoxWithoutItsStartTime (found by an operator: a
// box adopted with a damaged state.json showed UPTIME 0ms for good, which
// reads as "it just restarted"): the sample's uptime is shown, else "-".
func TestPSUptimeOfAnAdoptedBoxWithoutItsStartTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	const uptimeCol = 7
	running := messages.BoxStatus{ID: "web", State: messages.StateRunning, PID: 42}
	cases := []struct {
		name string
		st   messages.BoxStatus
		m    messages.BoxMetrics
		want string
	}{
		{"recorded start", withStart(running, now.Add(-5*time.Minute)), messages.BoxMetrics{}, "5m0s"},
		{"no start, sampled", running, messages.BoxMetrics{ID: "web", Uptime: 282 * time.Second}, "4m42s"},
		{"no start, no sample", running, messages.BoxMetrics{}, "-"},
	}
	for _, c := range cases {
		cells := psCells(newPSRow(c.st, c.m, now))
		if got := cells[uptimeCol]; got != c.want {
			t.Errorf("%s: UPTIME %q, want %q (row %q)", c.name, got, c.want, cells)
		}
	}
}

func withStart(st messages.BoxStatus, at time.Time) messages.BoxStatus {
	st.StartedAt = at
	return st
}
