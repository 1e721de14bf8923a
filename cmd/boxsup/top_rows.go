package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// topRow is one box in boxsup top.
type topRow struct {
	ID        string
	State     messages.BoxState
	Restarts  int
	CPU       float64
	Memory    uint64
	Processes int
	Uptime    time.Duration // 0 unless live
	Live      bool
	// Health is "" for a box without a health check; MemoryLimit 0 for
	// one without a memory limit (the columns show "-").
	Health      string
	MemoryLimit uint64
}

// topRows joins a list and a metrics sample.
func topRows(boxes []messages.BoxStatus, samples []messages.BoxMetrics, now time.Time) []topRow {
	byID := make(map[string]messages.BoxMetrics, len(samples))
	for _, m := range samples {
		byID[m.ID] = m
	}
	rows := make([]topRow, 0, len(boxes))
	for _, st := range boxes {
		r := topRow{ID: st.ID, State: st.State, Restarts: st.Restarts, Live: st.State.Live()}
		if st.Health != nil {
			r.Health = string(st.Health.State)
		}
		if m, ok := byID[st.ID]; ok && r.Live {
			r.CPU, r.Memory, r.Processes = m.CPUPercent, m.MemoryBytes, m.Processes
			r.Uptime, r.MemoryLimit = m.Uptime, m.MemoryLimitBytes
		}
		if r.Live && r.Uptime == 0 && !st.StartedAt.IsZero() {
			r.Uptime = now.Sub(st.StartedAt)
		}
		rows = append(rows, r)
	}
	return rows
}

// topColumn is one column of the table: its header, width, cell and
// ordering. The key sorts by it.
type topColumn struct {
	header string
	key    string // the key that sorts by this column; "" if none
	width  int
	right  bool
	cell   func(r topRow) string
	less   func(a, b topRow) int // ascending
}

// topColumns are the table's columns, in order.
var topColumns = []topColumn{
	{"ID", "i", 20, false, func(r topRow) string { return r.ID }, func(a, b topRow) int { return cmp.Compare(a.ID, b.ID) }},
	{"STATE", "s", 10, false, func(r topRow) string { return string(r.State) }, func(a, b topRow) int { return cmp.Compare(a.State, b.State) }},
	{"HEALTH", "h", 9, false, func(r topRow) string { return dash(r.Health) }, func(a, b topRow) int { return cmp.Compare(a.Health, b.Health) }},
	{"RESTARTS", "r", 9, true, func(r topRow) string { return fmt.Sprint(r.Restarts) }, func(a, b topRow) int { return cmp.Compare(a.Restarts, b.Restarts) }},
	{"CPU%", "c", 6, true, func(r topRow) string { return liveCell(r, fmt.Sprintf("%.1f", r.CPU)) }, func(a, b topRow) int { return cmp.Compare(a.CPU, b.CPU) }},
	{"MEM", "m", 9, true, func(r topRow) string { return liveCell(r, humanBytes(r.Memory)) }, func(a, b topRow) int { return cmp.Compare(a.Memory, b.Memory) }},
	{"LIMIT", "", 9, true, func(r topRow) string {
		if r.MemoryLimit == 0 {
			return "-"
		}
		return humanBytes(r.MemoryLimit)
	}, nil},
	{"PROCS", "p", 5, true, func(r topRow) string { return liveCell(r, fmt.Sprint(r.Processes)) }, func(a, b topRow) int { return cmp.Compare(a.Processes, b.Processes) }},
	{"UPTIME", "u", 8, true, func(r topRow) string { return liveCell(r, humanDuration(r.Uptime)) }, func(a, b topRow) int { return cmp.Compare(a.Uptime, b.Uptime) }},
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// liveCell is v for a live box and "-" for one without a process.
func liveCell(r topRow, v string) string {
	if !r.Live {
		return "-"
	}
	return v
}

// sortTopRows sorts rows by column col (descending when desc), then by ID.
func sortTopRows(rows []topRow, col int, desc bool) {
	less := topColumns[col].less
	slices.SortStableFunc(rows, func(a, b topRow) int {
		c := less(a, b)
		if desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		return c
	})
}

// formatTopLine lays out one line of cells; the sorted column's header is
// marked with an arrow.
func formatTopLine(cells []string) string {
	var b strings.Builder
	for i, c := range cells {
		w := topColumns[i].width
		r := []rune(c)
		if len(r) > w {
			r = append(r[:w-1], '…')
		}
		gap := strings.Repeat(" ", w-len(r))
		if topColumns[i].right {
			b.WriteString(gap + string(r))
		} else {
			b.WriteString(string(r) + gap)
		}
		if i < len(cells)-1 {
			b.WriteString("  ")
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// topHeader returns the header line, marking the sort column.
func topHeader(sortCol int, desc bool) string {
	cells := make([]string, len(topColumns))
	for i, c := range topColumns {
		cells[i] = c.header
		if i == sortCol {
			if desc {
				cells[i] += "↓"
			} else {
				cells[i] += "↑"
			}
		}
	}
	return formatTopLine(cells)
}

// topLine returns one row's line.
func topLine(r topRow) string {
	cells := make([]string, len(topColumns))
	for i, c := range topColumns {
		cells[i] = c.cell(r)
	}
	return formatTopLine(cells)
}
