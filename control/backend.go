package control

import (
	"context"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// Backend is what a boxsup command needs from a supervisor. It is implemented
// by Client (a supervisor in another process, through the control socket)
// and by Local (a supervisor in this process); every method but Home and
// Close is one operation of the table in ops.go. Errors are *messages.Error
// values (compare with errors.Is against the messages codes), or context
// errors.
type Backend interface {
	// Start creates box req.ID and starts it; it returns when the box is
	// ready or failed (see actors.Supervisor.Start).
	Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error)
	// StartExisting starts a box at rest (exited, failed) again from its
	// stored spec and returns when it is ready.
	StartExisting(ctx context.Context, id string) (messages.BoxStatus, error)
	// Run starts box req.ID and holds it for the life of the call, as a
	// foreground `boxsup run` does: started is called once it is ready,
	// and Run returns when it has come to rest. When ctx ends first, the box
	// is stopped (for a Client: when the connection breaks, for instance
	// because the command died). remove removes the box at the end.
	Run(ctx context.Context, req messages.StartBox, remove bool, started func(messages.BoxStatus)) (messages.BoxStatus, error)
	// Stop stops a box gracefully: SIGTERM, then SIGKILL to its tree after
	// timeout (0: the box's own stop timeout). It returns after the shim exited.
	Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error)
	// Kill sends SIGKILL to a box's whole tree and returns after it exited.
	Kill(ctx context.Context, id string) (messages.BoxStatus, error)
	// Signal sends one signal ("HUP", "SIGUSR1", "10") to a box's shim.
	Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error)
	// Remove deletes a box's directory; force stops a live box first.
	Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error)
	// Adopt hands over a running shim another tool started for a box at
	// rest (see actors.Supervisor.Adopt).
	Adopt(ctx context.Context, id string, pid int) (messages.BoxStatus, error)
	// Update changes a box's restart policy, stop timeout or labels in
	// place, durably (see actors.Supervisor.Update).
	Update(ctx context.Context, u messages.UpdateBox) (messages.BoxStatus, error)
	// Status returns one box's status.
	Status(ctx context.Context, id string) (messages.BoxStatus, error)
	// Inspect returns everything known about one box: its status, its
	// state.json and spec.json (secrets redacted) as they are on disk (a
	// file that cannot be read is reported in the result, not as the
	// error), its cgroup, limits and paths. An unknown box is
	// messages.ErrNotFound.
	Inspect(ctx context.Context, id string) (messages.BoxInspect, error)
	// List returns the statuses of the boxes sel selects, sorted by ID.
	List(ctx context.Context, sel Selection) ([]messages.BoxStatus, error)
	// Metrics samples one live box's process tree.
	Metrics(ctx context.Context, id string) (messages.BoxMetrics, error)
	// MetricsAll samples every live box, sorted by ID.
	MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error)
	// Wait returns once the box has come to rest: state exited or failed
	// (a box waiting to be restarted is not at rest). It returns at once for
	// a box already at rest, and messages.ErrNotFound if the box is removed
	// meanwhile.
	Wait(ctx context.Context, id string) (messages.BoxStatus, error)
	// Events calls fn for each lifecycle event sel selects, in order, until
	// ctx ends (it then returns ctx's error) or the supervisor goes away.
	Events(ctx context.Context, sel Selection, fn func(messages.Event)) error
	// Home returns the absolute home directory the backend serves.
	Home() string
	// Close releases the backend. A Local that opened its own supervisor
	// shuts it down, leaving boxes running (detached ones for the next
	// supervisor to adopt).
	Close() error
}

// AtRest reports whether a box in state s will not change state on its own:
// it never started, has exited or failed. A restarting box is not at rest:
// its restart policy will start it again.
func AtRest(s messages.BoxState) bool { return s.AtRest() }
