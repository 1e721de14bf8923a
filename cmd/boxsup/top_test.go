package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/boxsup/boxsup/messages"
)

// TestTopPlainTableWhenNotATerminal: with stdout a pipe, top prints one
// table and exits.
func TestTopPlainTableWhenNotATerminal(t *testing.T) {
	e := newEnv(t)
	e.runDetached("web", nil, "exec sleep 1000")
	r := e.must("top")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "HEALTH") ||
		!strings.HasPrefix(lines[1], "web") || !strings.Contains(lines[1], "running") {
		t.Fatalf("top without a terminal: %s", r)
	}
	if strings.Contains(r.stdout, "\x1b") {
		t.Fatalf("escape sequences in the plain table: %q", r.stdout)
	}
}

// tmuxSession is a tmux server of the test's own (its own socket), with one
// session running a command.
type tmuxSession struct {
	t      *testing.T
	bin    string
	socket string
}

func newTmux(t *testing.T, width, height int, command string) *tmuxSession {
	t.Helper()
	bin, err := exec.LookPath("tmux")
	if err != nil {
		t.Skip("tmux not found (Debian package tmux; .ci/run installs it): top is not driven as a terminal here")
	}
	s := &tmuxSession{t: t, bin: bin, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	s.run("new-session", "-d", "-s", "top", "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), command)
	t.Cleanup(func() { _ = exec.Command(s.bin, "-S", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command(s.bin, append([]string{"-S", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen returns what the pane shows.
func (s *tmuxSession) screen() string { return s.run("capture-pane", "-p", "-t", "top") }

// keys types keys (tmux key names: "Enter", "Escape", "j").
func (s *tmuxSession) keys(keys ...string) {
	s.run(append([]string{"send-keys", "-t", "top"}, keys...)...)
}

// waitScreen polls the screen until check accepts it.
func (s *tmuxSession) waitScreen(what string, check func(screen string) bool) string {
	s.t.Helper()
	var last string
	deadline := time.Now().Add(waitDeadline)
	for time.Now().Before(deadline) {
		last = s.screen()
		if check(last) {
			return last
		}
		time.Sleep(pollInterval)
	}
	s.t.Fatalf("%s: not shown within %s; the screen:\n%s", what, waitDeadline, last)
	return ""
}

// lineIndex returns the index of the first screen line starting with
// prefix, or -1.
func lineIndex(screen, prefix string) int {
	for i, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// TestTopInATerminal drives boxsup top in tmux as a person would: it reads
// the table, sorts with keys, opens a box's log with Enter, goes back and
// quits with q.
func TestTopInATerminal(t *testing.T) {
	e := newEnv(t)
	e.runDetached("web", nil, `i=0; while true; do i=$((i+1)); echo "web-line-$i"; sleep 0.2; done`)
	e.runDetached("db", nil, "exec sleep 1000")
	done := filepath.Join(t.TempDir(), "exit-code")
	s := newTmux(t, 120, 24, fmt.Sprintf("%s --home %s top; echo $? > %s", boxsupBin, e.home, done))

	screen := s.waitScreen("both boxes, sorted by CPU", func(sc string) bool {
		return lineIndex(sc, "web ") >= 0 && lineIndex(sc, "db ") >= 0 && strings.Contains(sc, "CPU%↓")
	})
	for _, col := range []string{"ID", "STATE", "HEALTH", "RESTARTS", "MEM", "LIMIT", "PROCS", "UPTIME"} {
		if !strings.Contains(screen, col) {
			t.Errorf("no %s column:\n%s", col, screen)
		}
	}
	if !strings.Contains(screen, "2 boxes, 2 live") {
		t.Errorf("no summary line:\n%s", screen)
	}

	s.keys("i") // by ID, ascending
	s.waitScreen("sorted by ID", func(sc string) bool {
		return strings.Contains(sc, "ID↑") && lineIndex(sc, "db ") >= 0 && lineIndex(sc, "db ") < lineIndex(sc, "web ")
	})
	s.keys("i") // again: descending
	s.waitScreen("sorted by ID, descending", func(sc string) bool {
		return strings.Contains(sc, "ID↓") && lineIndex(sc, "web ") >= 0 && lineIndex(sc, "web ") < lineIndex(sc, "db ")
	})
	s.keys("m")
	s.waitScreen("sorted by memory", func(sc string) bool { return strings.Contains(sc, "MEM↓") })

	s.keys("i", "g", "j", "Enter") // ascending by ID, top, second row (web), its log
	s.waitScreen("web's log lines", func(sc string) bool {
		return strings.Contains(sc, "logs of web") && strings.Contains(sc, "web-line-")
	})
	s.keys("Escape")
	s.waitScreen("the table again", func(sc string) bool { return strings.Contains(sc, "PROCS") && !strings.Contains(sc, "logs of web") })

	s.keys("q")
	eventually(t, "top to exit after q", func() bool {
		b, err := os.ReadFile(done)
		return err == nil && strings.TrimSpace(string(b)) == "0"
	})
}

// TestTopModel checks the model without a terminal: refresh, sorting,
// cursor, log view and quitting.
func TestTopModel(t *testing.T) {
	t.Parallel()
	m := &topModel{ctx: context.Background(), home: "/h", sortCol: 4, desc: true, width: 120, height: 20}
	now := time.Now()
	snap := topSnapshot{at: now, rows: topRows(
		[]messages.BoxStatus{
			{ID: "a", State: messages.StateRunning, Restarts: 2},
			{ID: "b", State: messages.StateExited},
			{ID: "c", State: messages.StateRunning, StartedAt: now.Add(-time.Hour)},
		},
		[]messages.BoxMetrics{{ID: "a", CPUPercent: 5, MemoryBytes: 10 << 20, Processes: 2, Uptime: time.Minute}, {ID: "c", CPUPercent: 50, MemoryBytes: 1 << 20, Processes: 1}},
		now)}
	_, cmd := m.Update(snap)
	if cmd == nil {
		t.Fatal("a snapshot must schedule the next refresh")
	}
	order := func() string {
		var ids []string
		for _, r := range m.snap.rows {
			ids = append(ids, r.ID)
		}
		return strings.Join(ids, "")
	}
	if order() != "cab" {
		t.Fatalf("by CPU desc: %s", order())
	}
	if r := m.snap.rows[0]; r.Uptime < 59*time.Minute {
		t.Errorf("uptime from StartedAt when the sample has none: %v", r.Uptime)
	}
	press := func(k string) tea.Cmd {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		_, cmd := m.Update(msg)
		return cmd
	}
	press("m")
	if order() != "acb" {
		t.Fatalf("by memory: %s", order())
	}
	press("r")
	if order() != "abc" || !m.desc {
		t.Fatalf("by restarts: %s", order())
	}
	press("j") // the cursor stays on c, the last row
	press("o") // reverse: b, c, a; the cursor stays on c
	if order() != "bca" || m.snap.rows[m.cursor].ID != "c" {
		t.Fatalf("reversed: %s, cursor on %s", order(), m.snap.rows[m.cursor].ID)
	}
	view := m.View()
	if !strings.Contains(view, "RESTARTS↑") || !strings.Contains(view, "3 boxes, 2 live") {
		t.Fatalf("view:\n%s", view)
	}
	for _, l := range strings.Split(view, "\n") {
		if strings.HasPrefix(l, "b ") && strings.Join(strings.Fields(l), " ") != "b exited - 0 - - - - -" {
			t.Errorf("an exited box shows - for its figures: %q", l)
		}
	}
	orig := readRecentLogLines
	t.Cleanup(func() { readRecentLogLines = orig })
	if cmd := press("enter"); cmd == nil || m.logID != "c" {
		t.Fatalf("enter: log view of %q", m.logID)
	}
	m.Update(topLogs{id: "c", lines: []string{"one", "two"}})
	if v := m.View(); !strings.Contains(v, "logs of c") || !strings.Contains(v, "two") {
		t.Fatalf("log view:\n%s", v)
	}
	if cmd := press("q"); cmd != nil || m.logID != "" {
		t.Fatal("q in the log view goes back to the table")
	}
	if cmd := press("q"); cmd == nil {
		t.Fatal("q in the table quits")
	}
}

func TestConsoleLineText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain line": "plain line",
		"2026-11-30T18:00:01.123456789Z stdout F hi":  "18:00:01 hi",
		"2026-11-30T18:00:02.000000000Z stderr F bad": "18:00:02 ! bad",
		"2026-11-30T18:00:03Z stdout P part":          "18:00:03 part",
		"2026-11-30T18:00:03Z other F x":              "2026-11-30T18:00:03Z other F x",
		"esc \x1b[2J clear":                           "esc �[2J clear",
		"c1 \u009b31m":                                "c1 �31m",
	} {
		if got := consoleLineText(in); got != want {
			t.Errorf("consoleLineText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadRecentLogLines(t *testing.T) {
	e := newEnv(t)
	e.runDetached("talker", nil, `i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo "n$i"; done; exec sleep 1000`)
	var lines []string
	text := func(line string) string { // "15:04:05 n50" -> "n50"
		_, rest, _ := strings.Cut(line, " ")
		return rest
	}
	eventually(t, "50 lines in the console", func() bool {
		var err error
		lines, err = readRecentLogLines(e.home, "talker", 5)
		return err == nil && len(lines) == 5 && text(lines[4]) == "n50"
	})
	var got []string
	for _, l := range lines {
		got = append(got, text(l))
	}
	if strings.Join(got, ",") != "n46,n47,n48,n49,n50" {
		t.Fatalf("last 5 lines: %v", lines)
	}
	if lines, err := readRecentLogLines(e.home, "nobody", 5); err == nil && lines != nil {
		t.Fatalf("an unknown box: %v", lines)
	}
}
