package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
)

// forEachBox runs op on every ID in parallel (stopping many boxes takes as
// long as the slowest, not the sum), prints each ID as its op succeeds and
// each failure as it happens. The command fails (exit 1) if any op failed.
func (a *app) forEachBox(cmd *cobra.Command, ids []string, op func(context.Context, control.Backend, string) error) error {
	ctx := cmd.Context()
	b, err := a.connect(ctx, false)
	if err != nil {
		return err
	}
	defer b.Close()
	var mu sync.Mutex
	failed := false
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := op(ctx, b, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = true
				fmt.Fprintf(a.stderr, "boxsup: %v\n", err)
				return
			}
			fmt.Fprintln(a.stdout, id)
		}()
	}
	wg.Wait()
	if failed {
		return exitWith(exitError)
	}
	return nil
}
