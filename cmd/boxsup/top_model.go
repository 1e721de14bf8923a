package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/boxsup/boxsup/control"
)

// Bounds of top's refreshes.
const (
	topRefresh      = time.Second
	topFetchTimeout = 5 * time.Second
	topLogLines     = 200 // lines read for the log view; the screen shows the last that fit
)

// topSnapshot is one refresh: the rows, or why there are none.
type topSnapshot struct {
	rows []topRow
	at   time.Time
	err  error
}

// topLogs is the log view's content for one box.
type topLogs struct {
	id    string
	lines []string
	err   error
}

// topTick asks for the next refresh.
type topTick struct{}

// topModel is boxsup top's bubbletea model. It never blocks: backend calls
// run in commands, and their results come back as messages.
type topModel struct {
	backend control.Backend
	home    string
	ctx     context.Context

	width, height int
	snap          topSnapshot
	fetched       bool
	sortCol       int
	desc          bool
	cursor        int    // index into snap.rows
	cursorID      string // the selected box, kept across refreshes
	logID         string // the box whose log is shown; "" for the table
	logs          topLogs
}

func newTopModel(ctx context.Context, b control.Backend) *topModel {
	return &topModel{backend: b, home: b.Home(), ctx: ctx, sortCol: 4, desc: true, width: 100, height: 30}
}

// Init implements tea.Model.
func (m *topModel) Init() tea.Cmd { return m.fetch }

// fetch takes one snapshot through the backend.
func (m *topModel) fetch() tea.Msg {
	ctx, cancel := context.WithTimeout(m.ctx, topFetchTimeout)
	defer cancel()
	snap := topSnapshot{at: time.Now()}
	boxes, err := m.backend.List(ctx, control.Selection{})
	if err == nil {
		ms, merr := m.backend.MetricsAll(ctx)
		if merr != nil {
			err = merr
		}
		snap.rows = topRows(boxes, ms, snap.at)
	}
	snap.err = err
	return snap
}

// fetchLogs reads the selected box's recent log lines.
func (m *topModel) fetchLogs() tea.Msg {
	lines, err := readRecentLogLines(m.home, m.logID, topLogLines)
	return topLogs{id: m.logID, lines: lines, err: err}
}

// Update implements tea.Model.
func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topSnapshot:
		m.snap, m.fetched = msg, true
		m.resort()
		return m, tea.Tick(topRefresh, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		if m.logID != "" {
			return m, tea.Batch(m.fetch, m.fetchLogs)
		}
		return m, m.fetch
	case topLogs:
		if msg.id == m.logID {
			m.logs = msg
		}
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// key handles one key press. Keys typed faster than the terminal is read
// arrive as one message of several runes: each is handled in turn.
func (m *topModel) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyRunes && len(k.Runes) > 1 && !k.Paste {
		var cmds []tea.Cmd
		for _, r := range k.Runes {
			_, cmd := m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: k.Alt})
			cmds = append(cmds, cmd)
		}
		return m, tea.Sequence(cmds...)
	}
	s := k.String()
	if s == "ctrl+c" || s == "q" && m.logID == "" {
		return m, tea.Quit
	}
	if m.logID != "" {
		switch s {
		case "esc", "q", "enter", "backspace", "left":
			m.logID = ""
		}
		return m, nil
	}
	switch s {
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "home", "g":
		m.move(-len(m.snap.rows))
	case "end", "G":
		m.move(len(m.snap.rows))
	case "enter":
		if m.cursor < len(m.snap.rows) {
			m.logID = m.snap.rows[m.cursor].ID
			m.logs = topLogs{id: m.logID}
			return m, m.fetchLogs
		}
	case "o":
		m.desc = !m.desc
		m.resort()
	case "<", ">":
		m.sortCol = m.nextSortable(map[string]int{"<": -1, ">": 1}[s])
		m.resort()
	default:
		for i, c := range topColumns {
			if c.key != "" && c.key == s {
				if m.sortCol == i {
					m.desc = !m.desc
				} else {
					m.sortCol, m.desc = i, s != "i" && s != "s"
				}
				m.resort()
			}
		}
	}
	return m, nil
}

// nextSortable returns the next sortable column in direction dir.
func (m *topModel) nextSortable(dir int) int {
	n := len(topColumns)
	for i, c := 1, m.sortCol; i <= n; i++ {
		c = ((c+dir)%n + n) % n
		if topColumns[c].less != nil {
			return c
		}
	}
	return m.sortCol
}

func (m *topModel) move(d int) {
	m.cursor = min(max(m.cursor+d, 0), max(len(m.snap.rows)-1, 0))
	if m.cursor < len(m.snap.rows) {
		m.cursorID = m.snap.rows[m.cursor].ID
	}
}

// resort sorts the rows and keeps the cursor on the same box.
func (m *topModel) resort() {
	sortTopRows(m.snap.rows, m.sortCol, m.desc)
	m.cursor = 0
	for i, r := range m.snap.rows {
		if r.ID == m.cursorID {
			m.cursor = i
		}
	}
	m.move(0)
}

// View implements tea.Model.
func (m *topModel) View() string {
	if m.logID != "" {
		return m.logView()
	}
	var b strings.Builder
	running := 0
	for _, r := range m.snap.rows {
		if r.Live {
			running++
		}
	}
	fmt.Fprintf(&b, "boxsup top — %s — %d boxes, %d live — sorted by %s %s — %s\n",
		m.home, len(m.snap.rows), running, topColumns[m.sortCol].header, map[bool]string{true: "desc", false: "asc"}[m.desc],
		m.snap.at.Format("15:04:05"))
	switch {
	case !m.fetched:
		b.WriteString("\nloading…\n")
	case m.snap.err != nil:
		fmt.Fprintf(&b, "error: %v\n", m.snap.err)
	default:
		b.WriteString("\n")
	}
	b.WriteString(reverse(pad(topHeader(m.sortCol, m.desc), m.width)) + "\n")
	room := max(m.height-5, 1)
	first := max(m.cursor-room+1, 0)
	for i := first; i < len(m.snap.rows) && i < first+room; i++ {
		line := topLine(m.snap.rows[i])
		if i == m.cursor {
			line = reverse(pad(line, m.width))
		}
		b.WriteString(line + "\n")
	}
	if m.fetched && len(m.snap.rows) == 0 && m.snap.err == nil {
		b.WriteString("no boxes\n")
	}
	b.WriteString("\n" + help("↑/↓ select · enter logs · c cpu · m mem · r restarts · u uptime · p procs · i id · s state · o order · q quit"))
	return b.String()
}

// logView shows the selected box's recent console lines.
func (m *topModel) logView() string {
	var b strings.Builder
	fmt.Fprintf(&b, "boxsup top — logs of %s (console.log, last lines) — %s\n\n", m.logID, m.snap.at.Format("15:04:05"))
	room := max(m.height-4, 1)
	lines := m.logs.lines
	switch {
	case m.logs.err != nil:
		fmt.Fprintf(&b, "error: %v\n", m.logs.err)
		room--
	case lines == nil:
		b.WriteString("(no output yet)\n")
		room--
	}
	if len(lines) > room {
		lines = lines[len(lines)-room:]
	}
	for _, l := range lines {
		if m.width > 0 && len(l) > m.width {
			l = l[:m.width]
		}
		b.WriteString(l + "\n")
	}
	b.WriteString("\n" + help("esc/enter back · q back · ctrl+c quit"))
	return b.String()
}

func pad(s string, w int) string {
	if n := w - len([]rune(s)); n > 0 {
		return s + strings.Repeat(" ", n)
	}
	return s
}

// reverse and help are the only styling: reverse video and faint text,
// which every terminal tmux emulates.
func reverse(s string) string { return "\x1b[7m" + s + "\x1b[0m" }
func help(s string) string    { return "\x1b[2m" + s + "\x1b[0m" }
