package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// psRow is one box in `boxsup ps --format json`. The field names are part of
// the CLI contract (docs/CLI-GUIDE.md).
type psRow struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	PID         int               `json:"pid"` // 0 when no process
	Restarts    int               `json:"restarts"`
	ExitCode    *int              `json:"exit_code"` // null when no (known) exit
	Signal      string            `json:"signal"`
	Reason      string            `json:"reason"`
	Damage      string            `json:"damage"` // what was wrong with its files; "" when nothing
	Detached    bool              `json:"detached"`
	CreatedAt   *time.Time        `json:"created_at"`
	StartedAt   *time.Time        `json:"started_at"`
	UptimeSecs  float64           `json:"uptime_seconds"` // 0 unless live
	CPUPercent  float64           `json:"cpu_percent"`
	MemoryBytes uint64            `json:"memory_bytes"`
	Labels      map[string]string `json:"labels,omitempty"`
	Health      string            `json:"health,omitempty"` // starting|healthy|unhealthy; empty without a check
	// Node is the cluster member of the box (cluster only).
	Node string `json:"node,omitempty"`
	// UnseenSeconds, for a box whose member does not answer, is how long
	// ago that member was last seen (0 when unknown).
	UnseenSeconds float64 `json:"unseen_seconds,omitempty"`
	// sampled: CPUPercent and MemoryBytes come from a sample (a box whose
	// process is unknown, or that exited meanwhile, has none).
	sampled bool
	// uptimeKnown: UptimeSecs comes from the recorded start or a sample;
	// a box adopted without either shows "-", not 0ms.
	uptimeKnown bool
}

func (a *app) psCommand() *cobra.Command {
	var all bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "ps [-a] [--filter KEY=VALUE]... [--format table|json]",
		Short: "List boxes",
		Long: "List the boxes that are starting, running, stopping, waiting to restart or unknown (their\n" +
			"process could not be verified right now); -a adds exited and failed ones.\n\n" +
			"--filter narrows the list, as docker ps does (repeatable; filters of one key are or'ed,\n" +
			"different keys and label selectors and'ed):\n" +
			"  label=SELECTOR   a Kubernetes label selector: label=app=web, label='tier in (a,b)', label=!canary\n" +
			"  state=STATE      created|starting|running|stopping|restarting|exited|failed|unknown (implies -a)\n" +
			"  id=ID            the box ID\n\n" +
			"LABELS shows a box's labels sorted by key, cut to 40 characters (the JSON has them whole).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			sel, err := parsePSFilters(filters)
			if err != nil {
				return err
			}
			if len(sel.States) > 0 {
				all = true
			}
			rows, err := a.psRows(cmd, all, sel)
			if err != nil {
				return err
			}
			if format == formatJSON {
				return writeJSON(a.stdout, rows)
			}
			header := []string{"ID", "STATE", "HEALTH", "PID", "RESTARTS", "CPU%", "MEM", "UPTIME", "EXIT", "LABELS"}
			if a.cluster != nil {
				header = append([]string{"ID", "NODE"}, header[1:]...)
			}
			tw := newTable(a.stdout, header...)
			for _, r := range rows {
				cells := psCells(r)
				if a.cluster != nil {
					cells = append([]string{cells[0], r.Node}, cells[1:]...)
				}
				fmt.Fprintln(tw, strings.Join(cells, "\t"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return writePSNotes(a.stdout, rows)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "include exited and failed boxes")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "label=SELECTOR, state=STATE or id=ID; repeatable")
	cmd.Flags().StringVar(&format, "format", formatTable, "output format: table|json")
	return cmd
}

// psCells formats a row for the table. A box whose cluster member does not
// answer shows how long ago that member was last seen.
func psCells(r psRow) []string {
	pid, cpu, mem, up := "-", "-", "-", "-"
	if r.PID != 0 {
		pid = fmt.Sprint(r.PID)
	}
	if r.PID != 0 && r.uptimeKnown {
		up = humanDuration(time.Duration(r.UptimeSecs * float64(time.Second)))
	}
	if r.sampled {
		cpu = fmt.Sprintf("%.1f", r.CPUPercent)
		mem = humanBytes(r.MemoryBytes)
	}
	exit := "-"
	if r.ExitCode != nil {
		exit = fmt.Sprint(*r.ExitCode)
	}
	if r.Signal != "" {
		exit = r.Signal
	}
	state := r.State
	if r.UnseenSeconds > 0 {
		state += " (unseen " + humanDuration(time.Duration(r.UnseenSeconds*float64(time.Second))) + ")"
	}
	health := r.Health
	if health == "" {
		health = "-"
	}
	return []string{r.ID, state, health, pid, fmt.Sprint(r.Restarts), cpu, mem, up, exit, labelsText(r.Labels, labelsCellWidth)}
}

// psRows lists the boxes with a metrics sample for the live ones.
func (a *app) psRows(cmd *cobra.Command, all bool, sel control.Selection) ([]psRow, error) {
	ctx := cmd.Context()
	b, err := a.connect(ctx, false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	boxes, err := b.List(ctx, sel)
	if err != nil {
		return nil, err
	}
	samples, err := b.MetricsAll(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]messages.BoxMetrics, len(samples))
	for _, m := range samples {
		byID[m.ID] = m
	}
	now := time.Now()
	rows := make([]psRow, 0, len(boxes))
	for _, st := range boxes {
		if !all && (st.State == messages.StateExited || st.State == messages.StateFailed) {
			continue
		}
		rows = append(rows, newPSRow(st, byID[st.ID], now))
	}
	return rows, nil
}

func newPSRow(st messages.BoxStatus, m messages.BoxMetrics, now time.Time) psRow {
	r := psRow{
		ID:       st.ID,
		State:    string(st.State),
		PID:      st.PID,
		Restarts: st.Restarts,
		Reason:   st.Reason,
		Damage:   st.Damage,
		Detached: st.Detached,
		Labels:   st.Labels,
		Node:     st.Node,
	}
	if st.Unseen > 0 {
		r.UnseenSeconds = st.Unseen.Seconds()
	}
	if st.Health != nil {
		r.Health = string(st.Health.State)
	}
	if !st.CreatedAt.IsZero() {
		t := st.CreatedAt
		r.CreatedAt = &t
	}
	if !st.StartedAt.IsZero() {
		t := st.StartedAt
		r.StartedAt = &t
	}
	if st.State.Live() {
		switch {
		case r.StartedAt != nil:
			r.UptimeSecs, r.uptimeKnown = now.Sub(st.StartedAt).Seconds(), true
		case m.ID == st.ID && m.Uptime > 0:
			// Adopted without its start time (state.json was damaged or
			// missing): the sample's, from the process's own start.
			r.UptimeSecs, r.uptimeKnown = m.Uptime.Seconds(), true
		}
		r.CPUPercent = m.CPUPercent
		r.MemoryBytes = m.MemoryBytes
		r.sampled = m.ID == st.ID
	} else {
		r.PID = 0
	}
	if e := st.LastExit; e != nil {
		// ShellCode: 128+N for a signal even in a record that predates
		// exit codes for signalled shims (exit_code -1 with a signal).
		if code := e.ShellCode(); code >= 0 {
			r.ExitCode = &code
		}
		r.Signal = e.Signal
	}
	return r
}

// writePSNotes explains, under the table, the boxes that need an
// operator's eye: one whose files were found damaged (what, and what was
// done instead of trusting them), a live one with a reason (its process
// could not be verified, it was recovered from damaged files, it waits to
// restart after an exit), and a failed one (why: its start failed, or its
// restart limit was hit).
func writePSNotes(w io.Writer, rows []psRow) error {
	first := true
	for _, r := range rows {
		var note string
		switch {
		case r.Damage != "":
			note = "damaged: " + r.Reason
		case r.Reason != "" && (messages.BoxState(r.State).Live() || r.State == string(messages.StateRestarting)):
			note = r.Reason
		case r.Reason != "" && r.State == string(messages.StateFailed):
			note = "failed: " + r.Reason
		default:
			continue
		}
		if first {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
			first = false
		}
		if _, err := fmt.Fprintf(w, "%s: %s\n", r.ID, note); err != nil {
			return err
		}
	}
	return nil
}

// parsePSFilters turns --filter flags into a selection; a bad one is a
// usage error (exit 2).
func parsePSFilters(filters []string) (control.Selection, error) {
	var sel control.Selection
	var selectors []string
	for _, f := range filters {
		key, value, ok := strings.Cut(f, "=")
		if !ok || value == "" {
			return sel, usageError(fmt.Errorf("--filter %q: want KEY=VALUE (label=, state= or id=)", f))
		}
		switch key {
		case "label":
			if _, err := labels.Parse(value); err != nil {
				return sel, usageError(fmt.Errorf("--filter %q: %v", f, err))
			}
			selectors = append(selectors, value)
		case "state":
			st := messages.BoxState(value)
			if !st.Valid() {
				return sel, usageError(fmt.Errorf("--filter %q: %q is not a box state", f, value))
			}
			sel.States = append(sel.States, st)
		case "id":
			sel.Boxes = append(sel.Boxes, value)
		default:
			return sel, usageError(fmt.Errorf("--filter %q: unknown key %q (label, state or id)", f, key))
		}
	}
	sel.Labels = strings.Join(selectors, ",")
	return sel, nil
}
