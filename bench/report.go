package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Value is one side of a row (the floor or boxsup): the median and the 99th
// percentile in the row's unit, and how many samples they come from. For
// rows measured in a few rounds P99 is the worst round.
type Value struct {
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Samples int     `json:"samples"`
}

// durationValue turns a Summary into a Value in milliseconds.
func durationValue(s Summary) Value {
	return Value{P50: ms(s.P50), P99: ms(s.P99), Samples: s.N}
}

// Row is one line of the report.
type Row struct {
	// ID is the row number of the benchmark issue, with a letter for
	// sub-rows ("2b").
	ID        string `json:"id"`
	Operation string `json:"operation"`
	// Unit of Floor and Boxsup: "ms", "threads/100 boxes", "KiB/box" or
	// "goroutines/box".
	Unit string `json:"unit"`
	// Floor is nil when the row has none (a cost that has no raw
	// equivalent, or a reference row).
	Floor     *Value `json:"floor,omitempty"`
	FloorDesc string `json:"floor_desc,omitempty"`
	Boxsup    Value  `json:"boxsup"`
	// Ratio is Boxsup.P50 / Floor.P50; nil without a floor.
	Ratio  *float64 `json:"ratio,omitempty"`
	Target string   `json:"target"`
	// Met is nil for rows that only report (no target).
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

// judge fills Ratio and Met. check receives the row and says whether the
// target is met; nil leaves Met unset.
func (r *Row) judge(check func(r *Row) bool) {
	if r.Floor != nil && r.Floor.P50 > 0 {
		ratio := r.Boxsup.P50 / r.Floor.P50
		r.Ratio = &ratio
	}
	if check != nil {
		met := check(r)
		r.Met = &met
	}
}

// noteFloorAbove records, for a row with an absolute target (in the row's
// unit), when the floor itself misses it: the machine, not boxsup, is then
// the limit.
func (r *Row) noteFloorAbove(target float64) {
	if r.Floor == nil || r.Floor.P50 <= target {
		return
	}
	msg := "the floor itself is above the target on this machine"
	if r.Note != "" {
		msg = r.Note + "; " + msg
	}
	r.Note = msg
}

// Report is a whole run: the machine, the parameters and the rows.
type Report struct {
	StartedAt  time.Time `json:"started_at"`
	Took       string    `json:"took"`
	Command    string    `json:"command"`
	Host       HostInfo  `json:"host"`
	Boxes      int       `json:"boxes"`
	Iterations int       `json:"iterations"`
	Rounds     int       `json:"rounds"`
	Rows       []Row     `json:"rows"`
	// Leftovers are processes of this run that were still alive at the end
	// and had to be killed (each is a bug somewhere).
	Leftovers []string `json:"leftovers"`
	Errors    []string `json:"errors,omitempty"`
	// Peers is the last run of the peer workloads (make bench-peers), kept
	// beside the rows of the last make bench.
	Peers *PeerReport `json:"peers,omitempty"`
}

// HostInfo describes the machine the numbers come from.
type HostInfo struct {
	Kernel    string `json:"kernel"`
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Load      string `json:"load_before,omitempty"`
}

// readHostInfo collects HostInfo from /proc.
func readHostInfo() HostInfo {
	h := HostInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			h.Load = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return h
}

// JSON renders the report, indented.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Markdown renders the table: one row per operation with its floor, boxsup's
// p50 and p99, the ratio, the target and whether it was met.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| # | operation | floor (p50 / p99) | boxsup p50 | boxsup p99 | ratio | target | met/missed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		floor := "—"
		if row.Floor != nil {
			floor = fmt.Sprintf("%s / %s", formatValue(row.Floor.P50, row.Unit), formatValue(row.Floor.P99, row.Unit))
		}
		ratio := "—"
		if row.Ratio != nil {
			ratio = fmt.Sprintf("%.2f×", *row.Ratio)
		}
		verdict := "report"
		if row.Met != nil {
			verdict = "missed"
			if *row.Met {
				verdict = "met"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			row.ID, row.Operation, floor,
			formatValue(row.Boxsup.P50, row.Unit), formatValue(row.Boxsup.P99, row.Unit),
			ratio, row.Target, verdict)
	}
	first := true
	for _, row := range r.Rows {
		if row.Note == "" {
			continue
		}
		if first {
			b.WriteString("\nNotes:\n\n")
			first = false
		}
		fmt.Fprintf(&b, "- %s: %s\n", row.ID, row.Note)
	}
	return b.String()
}

// formatValue prints a value with its unit, with a precision that suits it.
func formatValue(v float64, unit string) string {
	switch unit {
	case "ms":
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f ms", v)
		case v >= 10:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case "KiB/box":
		return fmt.Sprintf("%.1f KiB/box", v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
