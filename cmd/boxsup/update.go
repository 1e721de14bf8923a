package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/messages"
)

func (a *app) updateCommand() *cobra.Command {
	var restart, format string
	var stopTimeout time.Duration
	var addLabels, removeLabels []string
	cmd := &cobra.Command{
		Use:   "update ID [--restart MODE] [--stop-timeout DUR] [--label KEY=VALUE]... [--label-rm KEY]... [--format table|json]",
		Short: "Change a box's restart policy, stop timeout or labels in place",
		Long: "Change box ID's supervision settings in place, durably, without touching its process,\n" +
			"and print its status. The new restart policy judges the box's next exit, the new stop\n" +
			"timeout its next stop. An update that changes nothing is refused.\n\n" +
			"--restart takes no, on-failure, on-failure:N (at most N restarts within the restart\n" +
			"window, as run's --max-restarts), always, or unless-stopped, which is always: a box\n" +
			"that was stopped is never restarted by boxsup, whatever its policy. The rest of the\n" +
			"policy (window, backoff) stays as it is.\n\n" +
			"--label KEY=VALUE adds or changes one label and --label-rm KEY removes one; the box\n" +
			"applies them to the labels it has when the update reaches it, so two updates at once\n" +
			"never drop each other's labels.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			u := messages.UpdateBox{ID: args[0], RemoveLabels: removeLabels}
			var err error
			if u.AddLabels, err = parseLabelFlags("--label", addLabels); err != nil {
				return usageError(err)
			}
			if cmd.Flags().Changed("stop-timeout") {
				if stopTimeout < 0 {
					return usageError(messages.Errorf(messages.ErrBadSpec, "--stop-timeout %v: must not be negative", stopTimeout))
				}
				u.StopTimeout = &stopTimeout
			}
			var mode messages.RestartMode
			var maxRestarts *int
			if cmd.Flags().Changed("restart") {
				if mode, maxRestarts, err = parseRestartFlag(restart); err != nil {
					return usageError(err)
				}
			}
			if u.Empty() && mode == "" {
				return usageError(messages.Errorf(messages.ErrBadSpec, "update %s: nothing to change (give --restart, --stop-timeout, --label or --label-rm)", u.ID))
			}
			ctx := cmd.Context()
			b, err := a.connect(ctx, false)
			if err != nil {
				return err
			}
			defer b.Close()
			if mode != "" {
				// The policy travels whole: its other fields are kept from
				// the status read here.
				cur, err := b.Status(ctx, u.ID)
				if err != nil {
					return err
				}
				policy := cur.Restart
				policy.Mode = mode
				if maxRestarts != nil {
					policy.MaxRestarts = *maxRestarts
				}
				u.Restart = &policy
			}
			st, err := b.Update(ctx, u)
			if err != nil {
				return err
			}
			st.Err = nil
			if format == formatJSON {
				return writeJSON(a.stdout, st)
			}
			tw := newTable(a.stdout, "ID", "STATE", "RESTART", "STOP TIMEOUT", "LABELS")
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", st.ID, st.State, restartText(st.Restart), st.StopTimeout, labelsText(st.Labels, 0))
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&restart, "restart", "", "restart policy: no|on-failure[:N]|always|unless-stopped")
	f.DurationVar(&stopTimeout, "stop-timeout", 0, "grace between SIGTERM and SIGKILL when the box is stopped")
	f.StringArrayVar(&addLabels, "label", nil, "add or change a label KEY=VALUE; repeatable")
	f.StringArrayVar(&removeLabels, "label-rm", nil, "remove the label KEY; repeatable")
	addFormatFlag(cmd, &format)
	return cmd
}

// parseRestartFlag reads update's --restart: a mode, with on-failure:N
// setting the restart limit too. unless-stopped is always (boxsup never
// restarts a box that was stopped).
func parseRestartFlag(s string) (messages.RestartMode, *int, error) {
	name, count, hasCount := strings.Cut(s, ":")
	if name == "unless-stopped" {
		name = string(messages.RestartAlways)
	}
	mode, err := messages.ParseRestartMode(name)
	if err != nil {
		return "", nil, messages.Errorf(messages.ErrBadSpec, "--restart %q: want no, on-failure[:N], always or unless-stopped", s)
	}
	if !hasCount {
		return mode, nil, nil
	}
	n, err := strconv.Atoi(count)
	if mode != messages.RestartOnFailure || err != nil || n <= 0 {
		return "", nil, messages.Errorf(messages.ErrBadSpec, "--restart %q: only on-failure takes a count, a positive number", s)
	}
	return mode, &n, nil
}
