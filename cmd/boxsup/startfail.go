package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/messages"
)

// cleanupTimeout bounds the checks and the kill after a failed start.
const cleanupTimeout = 30 * time.Second

// asUsageError marks an invalid flag value (messages.ErrBadSpec from the
// flags alone) as a usage error, exit 2, like an unknown flag.
func asUsageError(err error) error {
	if errors.Is(err, messages.ErrBadSpec) {
		return usageError(err)
	}
	return err
}

// startFailed completes the error of a start that failed. A start that
// reports failure must leave no running box behind (the reply may have been
// lost while the box came up, or the box may be between its failure and
// its restart): such a box is killed. A box that exists keeps its ID until
// it is removed, and the error says so. Errors that mean no box was made
// (a bad spec, an ID in use by another box) are returned as they are.
func (a *app) startFailed(ctx context.Context, b control.Backend, id string, err error) error {
	for _, untouched := range []error{messages.ErrAlreadyExists, messages.ErrInvalidID, messages.ErrBadSpec, messages.ErrUnsafeHome, messages.ErrUnavailable} {
		if errors.Is(err, untouched) {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	st, serr := b.Status(ctx, id)
	switch {
	case errors.Is(serr, messages.ErrNotFound):
		return err
	case serr != nil:
		return fmt.Errorf("%w; box %s may exist (checking failed: %v): see `boxsup ps -a`; its ID stays taken until `boxsup rm -f %s`", err, id, serr, id)
	}
	if st.State.Live() || st.State == messages.StateRestarting || st.State == messages.StateCreated {
		if _, kerr := b.Kill(ctx, id); kerr != nil {
			return fmt.Errorf("%w; box %s is %s and killing it failed: %v; stop it with `boxsup rm -f %s`", err, id, st.State, kerr, id)
		}
		if after, serr := b.Status(ctx, id); serr == nil {
			st = after
		}
		return fmt.Errorf("%w; box %s was killed, since its start failed; its ID stays taken until `boxsup rm %s`", err, id, id)
	}
	return fmt.Errorf("%w; box %s is %s and keeps its ID until `boxsup rm %s`", err, id, st.State, id)
}
