package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

func (a *app) stopCommand() *cobra.Command {
	var timeout time.Duration
	var format string
	cmd := &cobra.Command{
		Use:   "stop [--timeout DUR] [--format table|json] ID...",
		Short: "Stop boxes gracefully",
		Long: "Send SIGTERM to each box and SIGKILL to its whole process tree if it has not exited\n" +
			"after the timeout (default: the box's --stop-timeout; 0: kill at once). Each ID is\n" +
			"printed once its box has stopped. Stopping a box that is not running succeeds at once.\n" +
			"With --format json, an array of {id, status, error} in the order of the IDs.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			given := cmd.Flags().Changed("timeout")
			if given && timeout < 0 {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--timeout %v: must not be negative", timeout))
			}
			a.lockWait = timeout + time.Minute
			return a.forEachBox(cmd, ids, format, func(ctx context.Context, b control.Backend, id string) (messages.BoxStatus, error) {
				if given && timeout == 0 {
					return b.Kill(ctx, id) // no grace: SIGKILL to the tree now
				}
				return b.Stop(ctx, id, timeout)
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "grace before SIGKILL (default: the box's own stop timeout; 0: kill at once)")
	addFormatFlag(cmd, &format)
	return cmd
}
