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

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// runForeground runs an attached box: its console streams to stdout, the
// first SIGINT or SIGTERM stops it gracefully and a second kills it, and the
// command ends with the box's exit code. Attached means the box also stops
// if boxsup dies (its supervisor's keepalive pipe closes).
func (a *app) runForeground(cmd *cobra.Command, o *runOptions, req messages.StartBox) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// Signals are handled here: the calls below must not be cancelled by them.
	ctx := context.WithoutCancel(cmd.Context())

	b, err := a.connect(ctx, true)
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

	st, err := startWatchingSignals(ctx, b, req, sigs, interrupt)
	if err != nil {
		if o.remove && !errors.Is(err, messages.ErrAlreadyExists) {
			// --rm covers a box that failed to start too; a box that
			// already existed is someone else's and stays.
			if _, rerr := b.Remove(ctx, req.ID, true); rerr == nil || errors.Is(rerr, messages.ErrNotFound) {
				return err
			}
		}
		return a.startFailed(ctx, b, req.ID, err)
	}
	box, err := (&layout.Home{Root: b.Home()}).Box(st.ID)
	if err != nil {
		return err
	}
	console := followConsole(box.ConsoleLogPath(), a.stdout)

	type waited struct {
		st  messages.BoxStatus
		err error
	}
	done := make(chan waited, 1)
	go func() {
		st, err := b.Wait(ctx, st.ID)
		done <- waited{st, err}
	}()
	var w waited
	for waiting := true; waiting; {
		select {
		case <-sigs:
			interrupt()
		case w = <-done:
			waiting = false
		}
	}
	if err := errors.Join(w.err, console.finish()); err != nil {
		return err
	}
	if o.remove {
		if _, err := b.Remove(ctx, st.ID, false); err != nil {
			return err
		}
	}
	return boxExitCode(w.st)
}

// startWatchingSignals starts the box; a signal during the start stops it
// (the start then reports that the box was stopped before it became ready).
func startWatchingSignals(ctx context.Context, b control.Backend, req messages.StartBox, sigs <-chan os.Signal, interrupt func()) (messages.BoxStatus, error) {
	type started struct {
		st  messages.BoxStatus
		err error
	}
	ch := make(chan started, 1)
	go func() {
		st, err := b.Start(ctx, req)
		ch <- started{st, err}
	}()
	for {
		select {
		case <-sigs:
			interrupt()
		case r := <-ch:
			return r.st, r.err
		}
	}
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
