package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// ShimBinaryName is the reference shim's file name, looked up beside the
// running executable and then on PATH when Config.ShimBinary is empty.
const ShimBinaryName = "boxsup-shim"

// Config configures a Supervisor. The zero value works: the home comes from
// $BOXSUP_HOME (else $XDG_STATE_HOME/boxsup, else ~/.local/state/boxsup) and
// the shim is found beside the executable or on PATH.
type Config struct {
	// Home is the state directory. One Supervisor per home at a time.
	Home string
	// ShimBinary is the default shim for boxes (engine "process"). Boxes of
	// other engines use Engines. A shim gets every secret of its boxes: a
	// binary that fails shimproc.CheckShimBinary (another user owns it, or
	// could write it or a directory above it) is refused, at each Start
	// and each spawn, with messages.ErrShimNotFound.
	ShimBinary string
	// Engines maps an engine name (e.g. "libkrun") to its shim binary,
	// checked like ShimBinary.
	Engines map[messages.EngineKind]string
	// Logger receives boxsup's logs and protoactor's (through a slog bridge).
	// Any logrus.FieldLogger works, so one with fields already set (a
	// *logrus.Entry) keeps them. Secrets are scrubbed from everything boxsup
	// logs through it: a *logrus.Logger, or an Entry's Logger, gets the
	// redaction hook installed (logging.InstallRedaction); any other
	// FieldLogger is wrapped (logging.Redacting). Nil means a logger at
	// $BOXSUP_LOG level on stderr.
	Logger logrus.FieldLogger
	// System embeds the supervisor into an existing actor system. Nil means
	// the supervisor creates its own, with protoactor's logs routed to
	// Logger. A system you create yourself routes them there when created
	// with actor.WithLoggerFactory(actors.ProtoactorLogger(logger)).
	System *actor.ActorSystem
	// Cgroup selects whether boxes get their own cgroup v2 (default: when a
	// writable cgroup2 hierarchy exists).
	Cgroup shimproc.CgroupMode
	// RequestTimeout bounds a facade call whose context has no deadline.
	// Default 2 minutes (a box's ready timeout is 30 s by default).
	RequestTimeout time.Duration
	// ActorRestarts and ActorRestartWindow bound how often a box actor (not
	// its process) may be restarted after a panic before the box is marked
	// failed. Defaults: 5 within 10 s.
	ActorRestarts      int
	ActorRestartWindow time.Duration
	// OnEvent, when set, receives every lifecycle event like a Subscribe
	// callback, but from before the boot reconcile: it also sees the
	// BoxAdopted and BoxExited events of the boxes found at boot, which a
	// Subscribe after NewSupervisor returns has missed. It is called until
	// Shutdown.
	OnEvent func(messages.Event)
	// Cluster, when set, makes the supervisor a member of a boxsup cluster
	// (see ClusterConfig and docs/CLUSTER.md).
	Cluster *ClusterConfig
	// EventHistory is how many of its latest events the supervisor keeps
	// in memory, for Subscribe with EventFilter.Since and EventHistory
	// (boxsup supervise keeps DefaultEventHistory). 0 keeps none: a
	// replay then only says, with an EventsLagged, that it has nothing.
	EventHistory int

	// faultInjection enables the injectPanic message (the package's tests).
	faultInjection bool
	// hooks reorder or delay chosen events (the package's tests).
	hooks *testHooks
}

// DefaultEventHistory is the event history boxsup supervise keeps: at a
// few hundred bytes an event, a few MiB.
const DefaultEventHistory = 10000

// testHooks let the package's tests force an order of events instead of
// hoping for one under load.
type testHooks struct {
	// deliver, when set, is called with each result of a box actor's own
	// work (a ready result, an exit, a persisted write, a timer) on its way
	// to the box's machine. send delivers an event to the same incarnation
	// of the box's actor, from any goroutine: the hook calls send(ev) once,
	// now or later, and may send other events too (a late timer).
	deliver func(box string, ev lifecycle.Event, send func(lifecycle.Event))
	// received, when set, is called with each message a box actor takes
	// from its mailbox, before it handles it (on the actor's goroutine: it
	// must not block).
	received func(box string, msg any)
}

func (c Config) withDefaults() Config {
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 2 * time.Minute
	}
	if c.ActorRestarts <= 0 {
		c.ActorRestarts = 5
	}
	if c.ActorRestartWindow <= 0 {
		c.ActorRestartWindow = 10 * time.Second
	}
	if c.Cluster != nil {
		cl := c.Cluster.withDefaults()
		c.Cluster = &cl
	}
	return c
}

// ShutdownMode says what Shutdown does with running boxes.
type ShutdownMode int

const (
	// LeaveRunning closes the supervisor and leaves detached boxes running,
	// for the next supervisor on this home to adopt. Attached boxes (spec
	// detach=false) cannot outlive the supervisor (their keepalive pipe
	// closes), so they are stopped gracefully and reaped, like StopAll does.
	LeaveRunning ShutdownMode = iota
	// StopAll stops every box gracefully (in parallel, each within its stop
	// timeout and the shutdown context), then closes the supervisor.
	StopAll
)
