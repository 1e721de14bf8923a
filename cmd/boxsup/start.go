package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
)

func (a *app) startCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "start ID...",
		Short: "Start stopped boxes again",
		Long: "Start each box that is at rest (exited or failed) again from its stored spec, as a\n" +
			"new generation with a fresh restart history. Each ID is printed once its box is ready.\n" +
			"A box that is already running succeeds at once.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return a.forEachBox(cmd, ids, func(ctx context.Context, b control.Backend, id string) error {
				_, err := b.StartExisting(ctx, id)
				return err
			})
		},
	}
}
