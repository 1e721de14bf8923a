package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/messages"
)

// inspectResult is one box in `boxsup inspect --format json`: the
// messages.BoxInspect fields, or the error when the box could not be
// inspected. The field names are part of the CLI contract
// (docs/CLI-GUIDE.md).
type inspectResult struct {
	messages.BoxInspect
	Error *messages.Error `json:"error,omitempty"`
}

func (a *app) inspectCommand() *cobra.Command {
	format := formatJSON
	cmd := &cobra.Command{
		Use:   "inspect [--format json|table] ID...",
		Short: "Show everything known about boxes",
		Long: "Show each box's status (state, generation, pid, restarts, last exit, labels, restart\n" +
			"policy, stop timeout), its state.json record (the shim's identity: pid, start time,\n" +
			"boot id), its spec.json with every secret value shown as [REDACTED], its cgroup, the\n" +
			"limits it asks for and those in force, and the paths of its files (console and shim\n" +
			"logs, sockets). A file that cannot be read (missing, damaged, unsafe) is shown with\n" +
			"its error; inspecting never changes a box.\n\n" +
			"The default output is a JSON array, one object per ID in order, as docker inspect\n" +
			"prints; an ID that cannot be inspected is an object with its id and error (and a\n" +
			"line on standard error), and boxsup exits 1. --format table prints the same for people.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := a.connect(ctx, false)
			if err != nil {
				return err
			}
			defer b.Close()
			results := make([]inspectResult, len(ids))
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					in, err := b.Inspect(ctx, id)
					results[i] = inspectResult{BoxInspect: in, Error: messages.AsError(err)}
					if err != nil {
						results[i].BoxInspect = messages.BoxInspect{ID: id}
					}
				}()
			}
			wg.Wait()
			failed := false
			for _, r := range results {
				if r.Error != nil {
					failed = true
					fmt.Fprintf(a.stderr, "boxsup: %v\n", r.Error)
				}
			}
			if format == formatJSON {
				err = writeJSON(a.stdout, results)
			} else {
				err = printInspect(a.stdout, results)
			}
			if err != nil {
				return err
			}
			if failed {
				return exitWith(exitError)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", formatJSON, "output format: json|table")
	return cmd
}

// printInspect prints the results for people: one block of aligned
// "key  value" lines per box, blank lines between.
func printInspect(w io.Writer, results []inspectResult) error {
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		tw := newTable(w, "ID", r.ID)
		row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
		if r.Error != nil {
			row("Error", r.Error)
			if err := tw.Flush(); err != nil {
				return err
			}
			continue
		}
		st := r.Status
		row("State", st.State)
		if st.Reason != "" {
			row("Reason", st.Reason)
		}
		row("Generation", st.Generation)
		row("PID", dashIfZero(st.PID))
		row("Restarts", st.Restarts)
		row("Last exit", lastExitText(st.LastExit))
		row("Killed", st.Killed)
		row("Detached", st.Detached)
		row("Labels", labelsText(st.Labels, 0))
		row("Restart policy", restartText(st.Restart))
		row("Stop timeout", st.StopTimeout)
		row("Created", timeText(st.CreatedAt))
		row("Started", timeText(st.StartedAt))
		switch {
		case r.Record != nil:
			id := r.Record.Identity
			row("Identity", fmt.Sprintf("pid %d, start time %d, boot id %s", id.PID, id.StartTime, orDash(id.BootID)))
			row("Updated", timeText(r.Record.UpdatedAt))
		case r.RecordError != nil:
			row("state.json", "error: "+r.RecordError.Error())
		}
		switch {
		case r.Spec != nil:
			e := r.Spec.Spec.GuestEntrypoint
			row("Engine", r.Spec.Spec.Engine)
			row("Command", strings.Join(append([]string{e.Executable}, e.Args...), " "))
			row("Work dir", orDash(e.WorkDir))
			row("Env", orDash(strings.Join(e.Env, " ")))
			var secrets []string
			for _, s := range r.Spec.Spec.Secrets {
				secrets = append(secrets, s.Name+"="+s.Value.String())
			}
			row("Secrets", orDash(strings.Join(secrets, " ")))
			row("Ready timeout", r.Spec.ReadyTimeout)
		case r.SpecError != nil:
			row("spec.json", "error: "+r.SpecError.Error())
		}
		row("Cgroup", orDash(r.Cgroup))
		row("Limits", limitsText(&r.Limits))
		switch {
		case r.Enforced != nil:
			row("Limits in force", limitsText(r.Enforced))
		case r.EnforcedError != nil:
			row("Limits in force", "error: "+r.EnforcedError.Error())
		}
		p := r.Paths
		row("Home", p.Home)
		row("Directory", p.Dir)
		row("Console log", p.ConsoleLog)
		row("Shim log", p.ShimLog)
		row("Sockets", p.Sockets)
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func limitsText(l *messages.Limits) string {
	var parts []string
	if l.CPUMillis != 0 {
		parts = append(parts, fmt.Sprintf("cpu %.3g", float64(l.CPUMillis)/1000))
	}
	if l.MemoryBytes != 0 {
		parts = append(parts, "memory "+humanBytes(l.MemoryBytes))
	}
	if l.Pids != 0 {
		parts = append(parts, fmt.Sprintf("pids %d", l.Pids))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func restartText(p messages.RestartPolicy) string {
	if p.Mode == "" {
		return "-"
	}
	if p.Mode == messages.RestartNo {
		return string(p.Mode)
	}
	p = p.WithDefaults()
	max := fmt.Sprint(p.MaxRestarts)
	if p.MaxRestarts < 0 {
		max = "unlimited"
	}
	return fmt.Sprintf("%s (max %s restarts within %v)", p.Mode, max, p.Window)
}

func lastExitText(e *messages.ExitRecord) string {
	if e == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s, %s)", exitText(e), e.Reason, timeText(e.FinishedAt))
}
