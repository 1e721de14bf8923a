package control

import (
	"context"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Backend is what a boxsup command needs from a supervisor. It is implemented
// by Client (a supervisor in another process, through the control socket)
// and by Local (a supervisor in this process). Errors are *messages.Error
// values (compare with errors.Is against the messages sentinels), or context
// errors.
type Backend interface {
	// Start creates box req.ID and starts it; it returns when the box is
	// ready or failed (see actors.Supervisor.Start).
	Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error)
	// Stop stops a box gracefully: SIGTERM, then SIGKILL to its tree after
	// timeout (0: the box's own stop timeout). It returns after the shim exited.
	Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error)
	// StartExisting starts a box at rest (exited, failed) again from its
	// stored spec and returns when it is ready.
	StartExisting(ctx context.Context, id string) (messages.BoxStatus, error)
	// Kill sends SIGKILL to a box's whole tree and returns after it exited.
	Kill(ctx context.Context, id string) (messages.BoxStatus, error)
	// Signal sends one signal ("HUP", "SIGUSR1", "10") to a box's shim.
	Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error)
	// Remove deletes a box's directory; force stops a live box first.
	Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error)
	// Status returns one box's status.
	Status(ctx context.Context, id string) (messages.BoxStatus, error)
	// List returns every box's status, sorted by ID.
	List(ctx context.Context) ([]messages.BoxStatus, error)
	// Metrics samples one live box's process tree.
	Metrics(ctx context.Context, id string) (messages.BoxMetrics, error)
	// MetricsAll samples every live box, sorted by ID.
	MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error)
	// Wait returns once the box has come to rest: state exited or failed
	// (a box waiting to be restarted is not at rest). It returns at once for
	// a box already at rest, and messages.ErrNotFound if the box is removed
	// meanwhile.
	Wait(ctx context.Context, id string) (messages.BoxStatus, error)
	// Home returns the absolute home directory the backend serves.
	Home() string
	// Close releases the backend. A Local that opened its own supervisor
	// shuts it down, leaving boxes running (detached ones for the next
	// supervisor to adopt).
	Close() error
}

// AtRest reports whether a box in state s will not change state on its own:
// it has exited or failed. A restarting box is not at rest: its restart
// policy will start it again.
func AtRest(s messages.BoxState) bool {
	return s == messages.StateExited || s == messages.StateFailed
}
