package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/cluster/client"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// runForeground runs an attached box: its console streams to stdout, the
// first SIGINT or SIGTERM stops it gracefully and a second kills it, and the
// command ends with the box's exit code. Attached means the box also stops
// if boxsup dies: the supervisor holds it for the life of this command
// (Backend.Run): in this process, whose end closes the box's keepalive, or
// in a boxsup supervise, which stops the box (and, with --rm, removes it)
// when this command's connection breaks.
func (a *app) runForeground(cmd *cobra.Command, o *runOptions, req messages.StartBox) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// Signals are handled here: the calls below must not be cancelled by them.
	ctx := context.WithoutCancel(cmd.Context())

	b, err := a.connectAttached(ctx)
	if err != nil {
		return err
	}
	defer b.Close()

	var bg sync.WaitGroup
	defer bg.Wait()
	interrupts := 0
	interrupt := func() {
		interrupts++
		bg.Add(1)
		go func(n int) {
			defer bg.Done()
			var err error
			if n == 1 {
				_, err = b.Stop(ctx, req.ID, 0)
			} else {
				_, err = b.Kill(ctx, req.ID)
			}
			if err != nil {
				a.log.WithError(err).WithField("box_id", req.ID).Debug("stopping the box after a signal")
			}
		}(interrupts)
	}

	// The console is copied from the box's files, until the box is at
	// rest (Ended): a box removed (--rm) is removed only after that, by
	// the supervisor wherever it runs, so its console cannot go before it
	// was read.
	var mu sync.Mutex
	var console *consoleFollower
	hooks := control.RunHooks{
		Started: func(st messages.BoxStatus) {
			if cc, ok := b.(*client.Client); ok { // on a member, maybe on another host
				mu.Lock()
				console = followRemoteConsole(cc, st.ID, a.stdout)
				mu.Unlock()
				return
			}
			box, err := (&layout.Home{Root: b.Home()}).Box(st.ID)
			if err != nil {
				return
			}
			mu.Lock()
			console = a.followConsole(box.ConsoleLogPath())
			mu.Unlock()
		},
		Ended: func(messages.BoxStatus) {
			mu.Lock()
			c := console
			mu.Unlock()
			if c != nil {
				_ = c.finish() // its error is read again below
			}
		},
	}
	type result struct {
		st  messages.BoxStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := b.Run(ctx, req, o.remove, hooks)
		done <- result{st, err}
	}()
	var r result
	for waiting := true; waiting; {
		select {
		case <-sigs:
			interrupt()
		case r = <-done:
			waiting = false
		}
	}
	mu.Lock()
	c := console
	mu.Unlock()
	if c == nil { // it never started
		if o.remove {
			// Run removed it, unless it existed before (someone else's).
			return r.err
		}
		return a.startFailed(ctx, b, req.ID, r.err)
	}
	// Ended was not called when the connection to the supervisor broke:
	// the copy ends here then.
	if err := errors.Join(r.err, c.finish()); err != nil {
		return err
	}
	return boxExitCode(r.st)
}

// boxExitCode turns a box's final status into boxsup's exit: the box's
// shell code (128+N for signal N), or an error when it is unknown.
func boxExitCode(st messages.BoxStatus) error {
	if st.LastExit == nil {
		return fmt.Errorf("box %s is %s without an exit record", st.ID, st.State)
	}
	code := st.LastExit.ShellCode()
	if code < 0 {
		return fmt.Errorf("box %s: exit status unknown (%s)", st.ID, st.LastExit)
	}
	if code == 0 {
		return nil
	}
	return exitWith(code)
}
