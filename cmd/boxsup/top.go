package main

import (
	"os"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func (a *app) topCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show the boxes live: state, restarts, CPU, memory, processes, uptime",
		Long: "A full-screen view of every box, refreshed every second: ID, STATE, HEALTH, RESTARTS,\n" +
			"CPU% (of one CPU), MEM (resident, whole tree), LIMIT, PROCS and UPTIME. HEALTH and LIMIT\n" +
			"show - until the supervisor reports health checks and memory limits.\n\n" +
			"Keys: up/down (or k/j) select a box; enter shows its recent console lines (esc goes\n" +
			"back); c, m, r, u, p, i and s sort by CPU, memory, restarts, uptime, processes, ID\n" +
			"and state (the same key again reverses), < and > move the sort column, o reverses\n" +
			"it; q or ctrl+c quits.\n\n" +
			"When standard output is not a terminal, top prints the table once, sorted by ID, and\n" +
			"exits (as docker stats --no-stream). Like logs -f, top keeps the home open while it\n" +
			"runs when no supervise serves it, and serves the control socket meanwhile.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tty := isTerminal(os.Stdout) && a.stdout == os.Stdout
			b, err := a.connect(ctx, tty)
			if err != nil {
				return err
			}
			defer b.Close()
			m := newTopModel(ctx, b)
			if !tty {
				return a.topOnce(m)
			}
			p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithAltScreen(), tea.WithOutput(os.Stdout), tea.WithInput(os.Stdin))
			_, err = p.Run()
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		},
	}
	return cmd
}

// topOnce prints one snapshot as a plain table, sorted by ID.
func (a *app) topOnce(m *topModel) error {
	snap := m.fetch().(topSnapshot)
	if snap.err != nil {
		return snap.err
	}
	sortTopRows(snap.rows, 0, false)
	tw := newTable(a.stdout, "ID", "STATE", "HEALTH", "RESTARTS", "CPU%", "MEM", "LIMIT", "PROCS", "UPTIME")
	for _, r := range snap.rows {
		cells := make([]string, len(topColumns))
		for i, c := range topColumns {
			cells[i] = c.cell(r)
		}
		if _, err := tw.Write([]byte(strings.Join(cells, "\t") + "\n")); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
