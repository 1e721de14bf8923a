package messages

import "time"

// Event is a lifecycle event, published on the actor system's EventStream and
// delivered to Supervisor.Subscribe callbacks. Switch on the concrete type.
type Event interface {
	// Box returns the box the event is about.
	Box() string
	// Kind returns the event's type name, e.g. "BoxReady".
	Kind() string
	// Header returns the fields every event has.
	Header() EventHeader
}

// EventHeader is embedded in every event.
type EventHeader struct {
	// Home is the home directory of the supervisor the event comes from:
	// several supervisors may share one actor system's event stream.
	Home  string `json:"home"`
	BoxID string `json:"box_id"`
	// At is when the transition happened (not when it was published, which
	// waits until the transition is written to state.json).
	At         time.Time `json:"at"`
	Generation uint64    `json:"generation"`
	// State is the box's state right after the event: a waiter tells from
	// the events alone when a box comes to rest, without a race against a
	// status query.
	State BoxState `json:"state,omitempty"`
	// Labels are the box's labels, for subscriptions that select by them.
	Labels map[string]string `json:"labels,omitempty"`
	// Seq numbers the supervisor's events from 1 in the order they are
	// published, which is the order every subscriber receives them in: a
	// consumer that reads a replay and then live events
	// (actors.EventFilter.Since) can tell a gap or a duplicate. It starts
	// again at 1 when a supervisor opens the home; 0 on an EventsLagged.
	Seq uint64 `json:"seq,omitempty"`
}

// Header returns the event's header.
func (h EventHeader) Header() EventHeader { return h }

// Box implements Event.
func (h EventHeader) Box() string { return h.BoxID }

// BoxStarted: the shim was spawned (not yet ready).
type BoxStarted struct {
	EventHeader
	PID int `json:"pid"`
}

// BoxReady: the shim signalled readiness; Took is spawn → ready. InPlace
// marks a guest that its shim restarted in place (the same shim and
// generation): Took is then its predecessor's exit → the new guest's start.
type BoxReady struct {
	EventHeader
	PID     int           `json:"pid"`
	Took    time.Duration `json:"took"`
	InPlace bool          `json:"in_place,omitempty"`
}

// BoxExited: the shim exited. Requested is true when a Stop, Kill or Remove
// caused it, false for a crash or a clean exit nobody asked for.
type BoxExited struct {
	EventHeader
	PID       int        `json:"pid"`
	Exit      ExitRecord `json:"exit"`
	Requested bool       `json:"requested"`
}

// BoxRestarting: the restart policy will start the box again after Delay.
// InPlace: the box's shim starts its guest again itself, at once, keeping
// its process, its cgroup and the generation (docs/SHIM-PROTOCOL.md §16).
type BoxRestarting struct {
	EventHeader
	Attempt int           `json:"attempt"` // restarts within the current window, this one included
	Delay   time.Duration `json:"delay"`
	InPlace bool          `json:"in_place,omitempty"`
}

// BoxAdopted: an already running shim was taken over by PID after its
// identity was verified.
type BoxAdopted struct {
	EventHeader
	PID int `json:"pid"`
}

// BoxFailed: the box is in state failed (start failed, ready timeout, restart
// intensity exceeded, or its actor kept panicking).
type BoxFailed struct {
	EventHeader
	Reason string `json:"reason"`
}

// BoxRemoved: the box's directory was removed.
type BoxRemoved struct {
	EventHeader
}

// EventsLagged is delivered to a subscriber that fell too far behind,
// before the first event it receives again: Dropped older events were lost.
// It belongs to no box.
//
// A subscription with a Since that reaches before the supervisor's event
// history begins receives one first, with At set to where the history
// begins (events before At are not known: they left the bounded history,
// or happened before the supervisor started) and Dropped the number of
// events that left the history (an upper bound of those the subscription
// selects; 0 when the history is whole since the supervisor started).
type EventsLagged struct {
	EventHeader
	Dropped int `json:"dropped"`
}

// Kind implementations.
func (BoxStarted) Kind() string    { return "BoxStarted" }
func (BoxReady) Kind() string      { return "BoxReady" }
func (BoxExited) Kind() string     { return "BoxExited" }
func (BoxRestarting) Kind() string { return "BoxRestarting" }
func (BoxAdopted) Kind() string    { return "BoxAdopted" }
func (BoxFailed) Kind() string     { return "BoxFailed" }
func (BoxRemoved) Kind() string    { return "BoxRemoved" }
func (EventsLagged) Kind() string  { return "EventsLagged" }

// BoxExit says how a box came to rest (Supervisor.Wait): exited or failed,
// with the exit of its last run when there was one.
type BoxExit struct {
	ID         string      `json:"id"`
	Generation uint64      `json:"generation"`
	State      BoxState    `json:"state"`
	Exit       *ExitRecord `json:"exit,omitempty"`
	Reason     string      `json:"reason,omitempty"`
	At         time.Time   `json:"at"`
}
