package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/layout"
)

func (a *app) logsCommand() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] ID",
		Short: "Print a box's console output",
		Long: "Print the box's console output (its guest's stdout and stderr). With -f keep\n" +
			"printing as it grows until the box has exited or failed, or until interrupted.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			ctx := cmd.Context()
			b, err := a.connect(ctx, follow)
			if err != nil {
				return err
			}
			defer b.Close()
			if _, err := b.Status(ctx, id); err != nil {
				return err
			}
			box, err := (&layout.Home{Root: b.Home()}).Box(id)
			if err != nil {
				return err
			}
			if !follow {
				return copyConsole(box.ConsoleLogPath(), a.stdout)
			}
			console := followConsole(box.ConsoleLogPath(), a.stdout)
			_, err = b.Wait(ctx, id)
			cerr := console.finish()
			if err != nil && ctx.Err() != nil && isContextErr(err) {
				err = nil // interrupted: as tail -f, not an error
			}
			return errors.Join(err, cerr)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the output until the box exits")
	return cmd
}
