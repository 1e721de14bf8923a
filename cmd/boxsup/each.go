package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/spf13/cobra"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// boxResult is one box's outcome in the JSON of a command that acts on
// several boxes (start, stop, kill, rm): the box's status after the
// operation, or the error. The field names are part of the CLI contract
// (docs/CLI-GUIDE.md).
type boxResult struct {
	ID     string              `json:"id"`
	Status *messages.BoxStatus `json:"status,omitempty"`
	Error  *messages.Error     `json:"error,omitempty"`
}

// boxOp is one command's operation on one box.
type boxOp func(context.Context, control.Backend, string) (messages.BoxStatus, error)

// forEachBox runs op on every ID in parallel (stopping many boxes takes as
// long as the slowest, not the sum). In table format it prints each ID as
// its op succeeds and each failure as it happens; in JSON, once all are
// done, an array of boxResult in the order of ids (failures are told on
// standard error too). The command fails (exit 1) if any op failed.
func (a *app) forEachBox(cmd *cobra.Command, ids []string, format string, op boxOp) error {
	if err := checkFormat(format); err != nil {
		return err
	}
	ctx := cmd.Context()
	b, err := a.connect(ctx, false)
	if err != nil {
		return err
	}
	defer b.Close()
	var mu sync.Mutex
	failed := false
	results := make([]boxResult, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := op(ctx, b, id)
			st.Err = nil // told once, in Error
			mu.Lock()
			defer mu.Unlock()
			results[i] = boxResult{ID: id, Error: messages.AsError(err)}
			if err != nil {
				failed = true
				fmt.Fprintf(a.stderr, "boxsup: %v\n", err)
				if st.ID != "" && st.State != "" {
					results[i].Status = &st
				}
				return
			}
			results[i].Status = &st
			if format == formatTable {
				fmt.Fprintln(a.stdout, id)
			}
		}()
	}
	wg.Wait()
	if format == formatJSON {
		if err := writeJSON(a.stdout, results); err != nil {
			return err
		}
	}
	if failed {
		return exitWith(exitError)
	}
	return nil
}
