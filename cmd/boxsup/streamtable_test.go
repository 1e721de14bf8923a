package main

import (
	"strings"
	"testing"
)

// TestStreamTableAlignsRowsWrittenOneAtATime: every row of the event
// stream's table starts its columns where the header does (a tabwriter
// flushed after each row did not), and a wider cell widens its column from
// then on.
func TestStreamTableAlignsRowsWrittenOneAtATime(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	tab, err := newStreamTable(&b, []string{"TIME", "BOX", "KIND", "DETAIL"}, []int{20, 4, 13, 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]string{
		{"2026-11-30T19:40:22Z", "web", "BoxStarted", "pid 1"},
		{"2026-11-30T19:40:22Z", "db", "BoxRestarting", "attempt 1 in 0s"},
		{"2026-11-30T19:40:23Z", "a-long-box", "BoxReady", "pid 2"},
		{"2026-11-30T19:40:24Z", "web", "BoxExited", "exit 0"},
	} {
		if err := tab.row(r...); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	col := func(line, cell string) int { return strings.Index(line, cell) }
	want := []string{
		"TIME                  BOX   KIND           DETAIL",
		"2026-11-30T19:40:22Z  web   BoxStarted     pid 1",
		"2026-11-30T19:40:22Z  db    BoxRestarting  attempt 1 in 0s",
		"2026-11-30T19:40:23Z  a-long-box  BoxReady       pid 2",
		"2026-11-30T19:40:24Z  web         BoxExited      exit 0",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("table:\n%s\nwant:\n%s", b.String(), strings.Join(want, "\n"))
	}
	if col(lines[1], "BoxStarted") != col(lines[0], "KIND") || col(lines[1], "pid") != col(lines[0], "DETAIL") {
		t.Errorf("row 1 does not line up with the header:\n%s", b.String())
	}
}
