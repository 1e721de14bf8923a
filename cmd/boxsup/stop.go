package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
)

func (a *app) stopCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop [--timeout DUR] ID...",
		Short: "Stop boxes gracefully",
		Long: "Send SIGTERM to each box and SIGKILL to its whole process tree if it has not exited\n" +
			"after the timeout (default: the box's --stop-timeout). Each ID is printed once its box\n" +
			"has stopped. Stopping a box that is not running succeeds at once.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return a.forEachBox(cmd, ids, func(ctx context.Context, b control.Backend, id string) error {
				_, err := b.Stop(ctx, id, timeout)
				return err
			})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "grace before SIGKILL (0: the box's own stop timeout)")
	return cmd
}
