package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/cluster/ownership"
	"github.com/boxsup/boxsup/messages"
)

// Messages the cluster door sends itself from its goroutines and timers.
// None leaves the package.

// doorTick paces the fence and the expiry of remote subscriptions.
type doorTick struct{}

// leaseEvent is a renewal or loss of the session's lease.
type leaseEvent struct {
	lease ownership.LeaseID
	ev    ownership.LeaseEvent
}

// joinDone reports a join attempt: a new session (with the lower bound of
// its lease's expiry) or the error.
type joinDone struct {
	session    *ownership.Session
	validUntil time.Time
	err        error
}

// reclaimDone reports the Reclaim of a new session.
type reclaimDone struct {
	session *ownership.Session
	owned   []ownership.Owned
	err     error
}

// claimDone reports the claim of a box about to be started.
type claimDone struct {
	id  string
	rec ownership.Record
	err error
}

// startReplied reports the root's answer to a claimed start.
type startReplied struct {
	id  string
	err error
}

// releaseDone reports the release of a box's record.
type releaseDone struct {
	id   string
	kept bool // the box exists: nothing was released
	err  error
}

// boxRemovedHere is a BoxRemoved event of this supervisor.
type boxRemovedHere struct{ id string }

// fenceDone reports the fence's stops: the boxes fenced, and the stops
// that failed.
type fenceDone struct {
	ids  []string
	errs []string
}

// scanDone carries one reading of the cluster and of the local boxes.
type scanDone struct {
	epoch   uint64 // the door's change counter when the scan began
	owned   []ownership.Owned
	members []ownership.Member
	local   []messages.BoxStatus
	err     error
}

// takeoverDone reports a take-over: the new record and the box's request,
// or why it did not happen.
type takeoverDone struct {
	id  string
	rec ownership.Record
	req messages.StartBox
	err error
}

// endpointLost reports that remote lost the connection to address.
type endpointLost struct{ address string }

// memberLeave asks the door to leave the cluster (Shutdown): fence the
// fail-over boxes, drop remote subscriptions, refuse new boxes. The reply
// is a memberLeft once the fence's stops are done.
type memberLeave struct{}

// memberLeft answers memberLeave.
type memberLeft struct {
	session *ownership.Session
	errs    []string
}

// pendingStart is a start waiting for its claim. The request is kept as
// the message to forward (a *messages.StartBox): the door's state holds no
// typed spec, so nothing that reaches the Supervisor's fields looks like
// one to the logging patrol.
type pendingStart struct {
	msg       any
	sender    *actor.PID
	cancelled bool
}
