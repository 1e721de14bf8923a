package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// Messages a box actor sends to itself from its helper goroutines, and those
// exchanged between the root and its box actors. None leaves the package.

// createBox carries a new box's request from the root to its fresh actor.
type createBox struct {
	req messages.StartBox
}

// created reports that the box directory, spec.json and state.json exist.
type created struct {
	inc uint64
	err error
}

// specDurable reports that a new box's spec.json and directory were fsynced.
type specDurable struct {
	inc uint64
	err error
}

// loaded reports what a booting (or restarted) box actor found on disk.
type loaded struct {
	inc     uint64
	spec    messages.StartBox
	rec     messages.StateRecord
	specErr error
	recErr  error
}

// spawned reports the result of shimproc.Start for generation gen.
type spawned struct {
	gen    uint64
	handle *shimproc.Handle
	err    error
}

// readied reports the result of WaitReady for generation gen.
type readied struct {
	gen uint64
	err error
}

// adopted reports the result of shimproc.Adopt for generation gen. When the
// process was gone or was not ours, handle is nil and exit says what is known.
type adopted struct {
	gen    uint64
	handle *shimproc.Handle
	exit   messages.ExitRecord
	lost   string // why the recorded process could not be adopted
}

// exited reports that generation gen's shim exited, with its status.
type exited struct {
	gen  uint64
	exit messages.ExitRecord
}

// persisted acknowledges that every state record up to seq is on disk.
type persisted struct {
	inc uint64
	seq uint64
	err error
}

// restartNow is scheduled after a restart backoff for generation gen.
type restartNow struct {
	gen uint64
}

// removed reports the result of deleting the box directory.
type removed struct {
	inc uint64
	err error
}

// killedTree reports the result of KillTree for generation gen.
type killedTree struct {
	inc uint64
	gen uint64
	err error
}

// statusChanged is sent by a box actor to the root after each committed
// transition, so List is answered from the root's cache without a fan-out.
type statusChanged struct {
	status messages.BoxStatus
	// initial is true for the first status after a boot load.
	initial bool
}

// boxGone tells the root that a box actor is about to stop for good
// (removed, or failed to be created). The root answers the waiters only once
// the actor has terminated, so that a caller who hears "removed" can at once
// create a box with the same ID (the actor's name is free by then).
type boxGone struct {
	id      string
	waiters []*actor.PID
	reply   messages.BoxStatus
}

// stopForShutdown stops a box within min(its own stop timeout, cap); sent by
// the root's stop-all fan-out. The reply is a BoxStatus.
type stopForShutdown struct {
	cap time.Duration
}

// bootListed carries the box IDs found in the home at boot.
type bootListed struct {
	ids []string
	err error
}

// awaitBoot is answered by the root once every box found at boot has
// reported its first status.
type awaitBoot struct{}

// bootDone is the answer to awaitBoot.
type bootDone struct {
	boxes int
}

// stopAll asks the root to stop every live box (or only the attached ones)
// within min(each box's stop timeout, timeoutCap); answered with a
// stopAllDone.
type stopAll struct {
	timeoutCap   time.Duration
	attachedOnly bool
}

// stopAllDone answers stopAll.
type stopAllDone struct {
	stopped int
	errs    []string
}

// InjectPanic makes the named box actor (or the root, when ID is empty) panic
// while handling it. It exists for fault-injection tests and is ignored unless
// Config.FaultInjection is set.
type InjectPanic struct {
	ID string `json:"id"`
}

// boxEntry is the part of a box that outlives its actor's incarnations: the
// keepalive write end (closing it would make an attached shim stop) and the
// restart history used for the intensity limit and backoff.
type boxEntry struct {
	mu        sync.Mutex
	id        string
	box       layout.Box
	fresh     bool // spawned for a new box: wait for createBox instead of loading
	keepalive *keepaliveRef
	history   restartHistory
}
