package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

func (a *app) rmCommand() *cobra.Command {
	var force bool
	var format string
	cmd := &cobra.Command{
		Use:   "rm [-f] [--format table|json] ID...",
		Short: "Remove stopped boxes",
		Long: "Remove each box's directory. A running box is refused unless -f, which stops it first.\n" +
			"With --format json, an array of {id, status, error} in the order of the IDs.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return a.forEachBox(cmd, ids, format, func(ctx context.Context, b control.Backend, id string) (messages.BoxStatus, error) {
				return b.Remove(ctx, id, force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running box first")
	addFormatFlag(cmd, &format)
	return cmd
}
