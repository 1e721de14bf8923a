package control

import (
	"time"

	"github.com/boxsup/boxsup/messages"
)

// ProtocolVersion is the control protocol's version, reported by ping.
const ProtocolVersion = 1

// maxRequestBytes bounds one request line: a StartBox with a large spec fits
// many times over, a runaway peer does not.
const maxRequestBytes = 4 << 20

// Op names a control request.
type Op string

// The control operations. Each maps to the Backend method of the same name;
// ping answers with ServerInfo and is how Connect tells a live server from a
// stale socket.
const (
	OpPing       Op = "ping"
	OpStart      Op = "start"
	OpStartAgain Op = "start_existing"
	OpStop       Op = "stop"
	OpKill       Op = "kill"
	OpSignal     Op = "signal"
	OpRemove     Op = "remove"
	OpStatus     Op = "status"
	OpList       Op = "list"
	OpMetrics    Op = "metrics"
	OpMetricsAll Op = "metrics_all"
	OpWait       Op = "wait"
)

// Request is one control request, sent as a single JSON line. Only the
// fields its Op uses are set. A start request carries the box's secrets in
// clear (the shim needs them): the socket is private to its owner.
type Request struct {
	Op      Op                 `json:"op"`
	ID      string             `json:"id,omitempty"`
	Start   *messages.StartBox `json:"start,omitempty"`
	Timeout time.Duration      `json:"timeout,omitempty"` // stop: SIGKILL after this (0: the box's own)
	Signal  string             `json:"signal,omitempty"`  // signal: "HUP", "SIGUSR1", "10"
	Force   bool               `json:"force,omitempty"`   // remove: stop a live box first
}

// Response answers one Request with a single JSON line. Error is set when
// the request failed; Status may then still describe the box as it is.
type Response struct {
	Status     *messages.BoxStatus   `json:"status,omitempty"`
	Boxes      []messages.BoxStatus  `json:"boxes,omitempty"`
	Metrics    *messages.BoxMetrics  `json:"metrics,omitempty"`
	AllMetrics []messages.BoxMetrics `json:"all_metrics,omitempty"`
	Server     *ServerInfo           `json:"server,omitempty"`
	Error      *messages.Error       `json:"error,omitempty"`
}

// ServerInfo answers a ping.
type ServerInfo struct {
	PID      int    `json:"pid"`
	Home     string `json:"home"`
	Protocol int    `json:"protocol"`
}

// ErrPermissionDenied is the code of the error a server answers to a peer
// whose uid is neither its own nor root's.
const ErrPermissionDenied messages.ErrorCode = "permission_denied"
