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
	cmd := &cobra.Command{
		Use:   "stop [--timeout DUR] ID...",
		Short: "Stop boxes gracefully",
		Long: "Send SIGTERM to each box and SIGKILL to its whole process tree if it has not exited\n" +
			"after the timeout (default: the box's --stop-timeout; 0: kill at once). Each ID is\n" +
			"printed once its box has stopped. Stopping a box that is not running succeeds at once.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			given := cmd.Flags().Changed("timeout")
			if given && timeout < 0 {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--timeout %v: must not be negative", timeout))
			}
			a.lockWait = timeout + time.Minute
			return a.forEachBox(cmd, ids, func(ctx context.Context, b control.Backend, id string) error {
				var err error
				if given && timeout == 0 {
					_, err = b.Kill(ctx, id) // no grace: SIGKILL to the tree now
				} else {
					_, err = b.Stop(ctx, id, timeout)
				}
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "grace before SIGKILL (default: the box's own stop timeout; 0: kill at once)")
	return cmd
}
