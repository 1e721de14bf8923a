package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
)

func (a *app) rmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] ID...",
		Short: "Remove stopped boxes",
		Long:  "Remove each box's directory. A running box is refused unless -f, which stops it first.",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return a.forEachBox(cmd, ids, func(ctx context.Context, b control.Backend, id string) error {
				_, err := b.Remove(ctx, id, force)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running box first")
	return cmd
}
