package control

import (
	"encoding/json"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// ProtocolVersion is the control protocol's version, reported by ping.
// Version 2 added update, adopt, run, events and list filters; version 3
// added inspect and the replay and end of an event stream (Selection.Since
// and Until), which a client refuses to ask of an older server rather than
// have them ignored.
const ProtocolVersion = 3

// maxRequestBytes bounds one request line: a StartBox with a large spec fits
// many times over, a runaway peer does not.
const maxRequestBytes = 4 << 20

// Op names a control request. The operations are listed once, in the table
// of ops.go, with the Backend method each serves.
type Op string

// The control operations.
const (
	OpPing       Op = "ping"
	OpStart      Op = "start"
	OpStartAgain Op = "start_existing"
	OpRun        Op = "run"
	OpStop       Op = "stop"
	OpKill       Op = "kill"
	OpSignal     Op = "signal"
	OpRemove     Op = "remove"
	OpAdopt      Op = "adopt"
	OpUpdate     Op = "update"
	OpStatus     Op = "status"
	OpList       Op = "list"
	OpMetrics    Op = "metrics"
	OpMetricsAll Op = "metrics_all"
	OpWait       Op = "wait"
	OpEvents     Op = "events"
	OpInspect    Op = "inspect"
)

// Request is one control request, sent as a single JSON line. Only the
// fields its Op uses are set. A start or run request carries the box's
// secrets in clear (the shim needs them): the client sends it only to a
// server it checked (SO_PEERCRED), on a socket private to its owner.
type Request struct {
	Op      Op                  `json:"op"`
	ID      string              `json:"id,omitempty"`
	Start   *messages.StartBox  `json:"start,omitempty"`
	Update  *messages.UpdateBox `json:"update,omitempty"`
	Timeout time.Duration       `json:"timeout,omitempty"` // stop: SIGKILL after this (0: the box's own)
	Signal  string              `json:"signal,omitempty"`  // signal: "HUP", "SIGUSR1", "10"
	Force   bool                `json:"force,omitempty"`   // remove: stop a live box first
	Remove  bool                `json:"remove,omitempty"`  // run: remove the box once at rest
	PID     int                 `json:"pid,omitempty"`     // adopt
	Select  *Selection          `json:"select,omitempty"`  // list, events
}

// Selection narrows list and events: empty fields select everything.
type Selection struct {
	Boxes  []string            `json:"boxes,omitempty"`
	Kinds  []string            `json:"kinds,omitempty"`  // events only
	Labels string              `json:"labels,omitempty"` // a Kubernetes label selector
	States []messages.BoxState `json:"states,omitempty"` // list only
	// Since (events only) replays the events of the supervisor's history
	// from then on before the live ones (actors.EventFilter.Since).
	Since time.Time `json:"since,omitzero"`
	// Until (events only) ends the stream once that time has come; events
	// that happened after it are not sent. An Until already past sends
	// the history up to it and ends.
	Until time.Time `json:"until,omitzero"`
}

// Response answers one Request with a single JSON line (run answers with
// two, the first one Started; events with one per event until the client
// hangs up). Error is set when the request failed; Status may then still
// describe the box as it is.
type Response struct {
	Status     *messages.BoxStatus   `json:"status,omitempty"`
	Started    bool                  `json:"started,omitempty"`
	Boxes      []messages.BoxStatus  `json:"boxes,omitempty"`
	Metrics    *messages.BoxMetrics  `json:"metrics,omitempty"`
	AllMetrics []messages.BoxMetrics `json:"all_metrics,omitempty"`
	Event      *EventLine            `json:"event,omitempty"`
	Inspect    *messages.BoxInspect  `json:"inspect,omitempty"`
	Server     *ServerInfo           `json:"server,omitempty"`
	// NotServed: the server was closing and did not look at the request,
	// which may be sent again as it is (to whoever serves the home next).
	NotServed bool            `json:"not_served,omitempty"`
	Error     *messages.Error `json:"error,omitempty"`
}

// EventLine carries one lifecycle event: its kind names its type.
type EventLine struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// ServerInfo answers a ping.
type ServerInfo struct {
	PID      int    `json:"pid"`
	Home     string `json:"home"`
	Protocol int    `json:"protocol"`
	// Temporary: the server is a command that holds the home for a while
	// (a foreground boxsup run), not a boxsup supervise. An attached box
	// started through it would die with it, so it refuses them.
	Temporary bool `json:"temporary,omitempty"`
}

// ErrPermissionDenied is the code of the error a server answers to a peer
// whose uid is neither its own nor root's.
const ErrPermissionDenied messages.ErrorCode = "permission_denied"

// ErrNoServer is the code of Connect's error when ConnectOptions.RequireServer
// is set and no boxsup supervise serves the home.
const ErrNoServer messages.ErrorCode = "no_server"
