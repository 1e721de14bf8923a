package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/messages"
	"github.com/boxsup/boxsup/shimproc"
)

// Messages a box actor sends to itself from its helper goroutines and
// timers, and those exchanged between the root and its box actors. None
// leaves the package.

// boxEvent carries a lifecycle event to incarnation inc of a box actor: a
// result of its work or a timer. An event for an earlier incarnation (the
// actor restarted meanwhile) is dropped.
type boxEvent struct {
	inc uint64
	ev  lifecycle.Event
}

// createBox carries a new box's request from the root to its fresh actor.
type createBox struct {
	req messages.StartBox
}

// cancelStart tells a box actor that the context of the start whose reply
// goes to caller ended before the box was ready.
type cancelStart struct {
	id     string
	caller *actor.PID
}

// loaded reports what a booting (or restarted) box actor found on disk.
type loaded struct {
	inc  uint64
	spec messages.StartBox
	ev   lifecycle.Loaded
}

// specUpdated hands the actor the box's request as an Update rewrote it
// (sent before the SpecWritten that reports it).
type specUpdated struct {
	inc  uint64
	spec messages.StartBox
}

// timerFired is a box's timer, scheduled to the box itself; the actor hands
// its event to the machine (through the test hook, when set).
type timerFired struct {
	inc uint64
	ev  lifecycle.Event
}

// spawned reports a spawn: the handle of the new shim (or of a running shim
// of the box that was adopted instead), or the error.
type spawned struct {
	inc     uint64
	gen     uint64
	handle  *shimproc.Handle
	adopted bool
	err     error
}

// verified reports a verification: the adopted handle, or what was found.
type verified struct {
	inc     uint64
	gen     uint64
	handle  *shimproc.Handle
	outcome lifecycle.Outcome
	exit    messages.ExitRecord
	err     error
}

// statusChanged is sent by a box actor to the root after each committed
// transition, so List is answered from the root's cache without a fan-out.
type statusChanged struct {
	status messages.BoxStatus
	// initial is true for the first status after a boot load.
	initial bool
}

// goneReply is one caller a gone box's root must answer.
type goneReply struct {
	to     *actor.PID
	status messages.BoxStatus
}

// boxGone tells the root that a box actor is about to stop for good
// (removed, or failed to be created). The root answers the callers only once
// the actor has terminated, so that a caller who hears "removed" can at once
// create a box with the same ID (the actor's name is free by then).
type boxGone struct {
	id      string
	replies []goneReply
}

// stopForShutdown stops a box within min(its own stop timeout, cap), or
// kills it at once when now is set; sent by the root's stop-all fan-out.
// The reply is a BoxStatus.
type stopForShutdown struct {
	cap time.Duration
	now bool
}

// settleForShutdown asks a detached box whether a start of it is in flight
// and is answered (a BoxStatus) once none is: Shutdown(LeaveRunning) leaves
// such a box running or at rest, never half started, and its Start caller
// hears the start's real outcome. Sent by the root's stop-all fan-out.
type settleForShutdown struct{}

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
// within min(each box's stop timeout, timeoutCap), or to kill them at once
// when now is set; answered with a stopAllDone.
type stopAll struct {
	timeoutCap   time.Duration
	now          bool
	attachedOnly bool
}

// stopAllDone answers stopAll.
type stopAllDone struct {
	stopped int
	errs    []string
}

// injectPanic makes the named box actor (or the root, when id is empty)
// panic while handling it. It is a fault-injection hook for the package's
// tests, ignored unless Config.faultInjection is set.
type injectPanic struct {
	id string
}
