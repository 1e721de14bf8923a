package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/cluster/client"
	"github.com/boxsup/boxsup/layout"
)

// logsFlags are the flags of boxsup logs, as typed.
type logsFlags struct {
	follow     bool
	tail       string
	since      string
	timestamps bool
	stream     string
}

func (a *app) logsCommand() *cobra.Command {
	var f logsFlags
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since T] [--timestamps] [--stream stdout|stderr] ID",
		Short: "Print a box's console output",
		Long: "Print the box's console output: its guest's stdout and stderr as the shim\n" +
			"recorded them, across the rotated console files. With -f keep printing as it\n" +
			"grows until the box has exited or failed, or until interrupted.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(time.Now())
			if err != nil {
				return usageError(err)
			}
			return a.logs(cmd.Context(), args[0], opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.follow, "follow", "f", false, "follow the output until the box exits")
	fl.StringVarP(&f.tail, "tail", "n", "all", "print only the last N lines (0: none, with -f only new output)")
	fl.StringVar(&f.since, "since", "", "print only lines since a time (RFC 3339, e.g. 2026-01-02T15:04:05Z) or a duration ago (10m)")
	fl.BoolVarP(&f.timestamps, "timestamps", "t", false, "start each line with its time (RFC 3339, UTC)")
	fl.StringVar(&f.stream, "stream", "", "print only stdout or stderr (default both)")
	return cmd
}

// options checks the flags and turns them into the reader's options; now
// anchors a relative --since.
func (f *logsFlags) options(now time.Time) (boxlog.Options, error) {
	opts := boxlog.Options{Follow: f.follow, Timestamps: f.timestamps}
	switch f.stream {
	case "", string(boxlog.Stdout), string(boxlog.Stderr):
		opts.Stream = boxlog.Stream(f.stream)
	default:
		return opts, fmt.Errorf("--stream %q: want stdout or stderr", f.stream)
	}
	if f.tail != "all" {
		n, err := strconv.Atoi(f.tail)
		if err != nil || n < 0 {
			return opts, fmt.Errorf("--tail %q: want a number of lines or all", f.tail)
		}
		opts.Tail = n
		if n == 0 {
			opts.Tail = boxlog.TailNone
		}
	}
	if f.since != "" {
		since, err := parseSince(f.since, now)
		if err != nil {
			return opts, err
		}
		opts.Since = since
	}
	return opts, nil
}

// parseSince reads --since: an RFC 3339 time, or a positive duration before
// now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration such as 10m", s)
}

// logs prints box id's console log. Following ends when the box is at rest
// (Backend.Wait) or the command is interrupted (exit 0, as tail -f).
func (a *app) logs(ctx context.Context, id string, opts boxlog.Options) error {
	b, err := a.connect(ctx, opts.Follow)
	if err != nil {
		return err
	}
	defer b.Close()
	if cc, ok := b.(*client.Client); ok {
		return a.clusterLogs(ctx, cc, id, opts)
	}
	if _, err := b.Status(ctx, id); err != nil {
		return err
	}
	box, err := (&layout.Home{Root: b.Home()}).Box(id)
	if err != nil {
		return err
	}
	if !opts.Follow {
		return boxlog.Copy(ctx, a.stdout, box.ConsoleLogPath(), opts)
	}
	waitCtx, stopWaiting := context.WithCancel(ctx)
	ended, waitErr := make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := b.Wait(waitCtx, id)
		close(ended)
		waitErr <- err
	}()
	opts.Ended = ended
	err = boxlog.Copy(ctx, a.stdout, box.ConsoleLogPath(), opts)
	stopWaiting()
	werr := <-waitErr
	if err == nil && ctx.Err() == nil {
		err = werr // the box vanished, or the supervisor went away
	}
	if err != nil && ctx.Err() != nil && isContextErr(err) {
		return nil // interrupted: as tail -f, not an error
	}
	return err
}

// clusterLogs prints the console of a box on a cluster member, read over
// remote in chunks; following ends when the box is at rest.
func (a *app) clusterLogs(ctx context.Context, c *client.Client, id string, opts boxlog.Options) error {
	r, err := c.Logs(ctx, id, actors.LogOptions{Follow: opts.Follow, Tail: opts.Tail, Since: opts.Since, Stream: opts.Stream, Timestamps: opts.Timestamps})
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = io.Copy(a.stdout, r)
	if err != nil && ctx.Err() != nil && isContextErr(err) {
		return nil // interrupted: as tail -f, not an error
	}
	return err
}
