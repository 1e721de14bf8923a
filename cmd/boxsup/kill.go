package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

func (a *app) killCommand() *cobra.Command {
	var sig, format string
	cmd := &cobra.Command{
		Use:   "kill [--signal SIG] [--format table|json] ID...",
		Short: "Kill boxes, or send them a signal",
		Long: "Without --signal (or with KILL) each box's whole process tree is killed at once and\n" +
			"its ID printed once it has exited. Any other signal (HUP, SIGUSR1, 10) is delivered\n" +
			"to the box's shim, which passes it on to the guest. With --format json, an array of\n" +
			"{id, status, error} in the order of the IDs.",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if !validSignal(sig) {
				return usageError(messages.Errorf(messages.ErrBadSpec, "--signal %q: want a signal name (HUP, SIGUSR1) or number (1-64)", sig))
			}
			sig = strings.TrimSpace(sig)
			kill := isKillSignal(sig)
			return a.forEachBox(cmd, ids, format, func(ctx context.Context, b control.Backend, id string) (messages.BoxStatus, error) {
				if kill {
					return b.Kill(ctx, id)
				}
				return b.Signal(ctx, id, sig)
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal name or number")
	addFormatFlag(cmd, &format)
	return cmd
}

// validSignal reports whether sig names a signal the supervisor can send,
// as it parses them ("HUP", "SIGHUP", "1"): a bad one is a usage error here,
// before any box is looked up.
func validSignal(sig string) bool {
	s := strings.ToUpper(strings.TrimSpace(sig))
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0 && n < 65
	}
	return messages.SignalNumber(s) > 0
}

// isKillSignal reports whether sig names SIGKILL ("KILL", "SIGKILL", "9").
func isKillSignal(sig string) bool {
	s := strings.ToUpper(strings.TrimSpace(sig))
	return s == "9" || messages.SignalNumber(s) == 9
}
