package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

func (a *app) startCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "start [--format table|json] ID...",
		Short: "Start stopped boxes again",
		Long: "Start each box that is at rest (exited or failed) again from its stored spec, as a\n" +
			"new generation with a fresh restart history. Each ID is printed once its box is ready.\n" +
			"A box that is already running succeeds at once. With --format json, an array of\n" +
			"{id, status, error} in the order of the IDs.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			return a.forEachBox(cmd, ids, format, func(ctx context.Context, b control.Backend, id string) (messages.BoxStatus, error) {
				return b.StartExisting(ctx, id)
			})
		},
	}
	addFormatFlag(cmd, &format)
	return cmd
}
