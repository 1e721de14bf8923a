package messages

import "time"

// PlacementKind is how a cluster chose a box's member.
type PlacementKind string

// The placement kinds.
const (
	// PlaceNode: the box was pinned to a named member; it never moves.
	PlaceNode PlacementKind = "node"
	// PlaceSpread: the member with the fewest boxes, then the most free
	// memory.
	PlaceSpread PlacementKind = "spread"
	// PlaceHash: the rendezvous hash of the box ID over the live members.
	PlaceHash PlacementKind = "hash"
)

// Placement is a box's cluster placement: a supervision option of StartBox
// (like Detach or Labels), never a shim spec field.
type Placement struct {
	// Kind is how the member was chosen.
	Kind PlacementKind `json:"kind"`
	// Node is the member the box was placed on. A member refuses a
	// StartBox placed on another member (a misrouted request).
	Node string `json:"node,omitempty"`
	// Failover lets another member re-place the box after its member's
	// loss (docs/CLUSTER.md); only with kind spread or hash.
	Failover bool `json:"failover,omitempty"`
}

// Validate checks the placement's form.
func (p *Placement) Validate() error {
	switch p.Kind {
	case PlaceNode, PlaceSpread, PlaceHash:
	default:
		return Errorf(ErrBadSpec, "placement: kind %q is not node, spread or hash", p.Kind)
	}
	if p.Failover && p.Kind == PlaceNode {
		return Errorf(ErrBadSpec, "placement: a box pinned to a node cannot fail over (use spread or hash)")
	}
	return nil
}

// NodeInfoRequest asks a cluster member about itself; the reply is a
// NodeInfo.
type NodeInfoRequest struct{}

// NodeInfo describes a cluster member: what placement weighs and what a
// client shows.
type NodeInfo struct {
	Cluster string `json:"cluster"`
	Node    string `json:"node"`
	Address string `json:"address"`
	// Boxes counts the member's boxes, in any state; LiveBoxes those that
	// may have a process.
	Boxes     int `json:"boxes"`
	LiveBoxes int `json:"live_boxes"`
	// MemAvailableBytes and MemTotalBytes are the host's (MemAvailable and
	// MemTotal of /proc/meminfo).
	MemAvailableBytes uint64 `json:"mem_available_bytes"`
	MemTotalBytes     uint64 `json:"mem_total_bytes"`
	// Accepting says the member takes new boxes; Refusal says why not.
	Accepting bool   `json:"accepting"`
	Refusal   string `json:"refusal,omitempty"`
	// Fence is the member's view of its own etcd lease (holding, lost,
	// fencing, fenced; joining before its first session).
	Fence string `json:"fence"`
	// Peers is what the member saw of the others.
	Peers []PeerSeen `json:"peers,omitempty"`
}

// PeerSeen is one member's view of another.
type PeerSeen struct {
	Node string `json:"node"`
	// Alive: its etcd registration existed at the last reading.
	Alive bool `json:"alive"`
	// Unseen is how long ago it was last seen alive (0 when alive).
	Unseen time.Duration `json:"unseen,omitempty"`
}

// EventsSubscribe asks a cluster member to send the sender every lifecycle
// event the filters select, as they happen, until Lease passes without the
// same subscription being sent again, an EventsUnsubscribe, or the
// connection to the subscriber is lost. The member acknowledges with the
// EventsSubscribe itself. Since replays the member's event history from
// then on first (when the subscription begins). An Until that has passed
// asks for that history only: the member sends it, then an
// EventsUnsubscribe of the subscription as the end.
type EventsSubscribe struct {
	Subscription string        `json:"subscription"`
	Boxes        []string      `json:"boxes,omitempty"`
	Kinds        []string      `json:"kinds,omitempty"`
	Labels       string        `json:"labels,omitempty"`
	Lease        time.Duration `json:"lease"`
	Since        time.Time     `json:"since,omitzero"`
	Until        time.Time     `json:"until,omitzero"`
}

// EventsUnsubscribe ends a subscription.
type EventsUnsubscribe struct {
	Subscription string `json:"subscription"`
}

// LogsRequest reads a box's console output on its member, in chunks: the
// first request (no Cursor) opens a reader with the options, and each
// following one (with the Cursor of the reply) reads on. A reader nobody
// reads from for a minute is closed. The reply is a LogsChunk.
type LogsRequest struct {
	ID         string    `json:"id"`
	Cursor     string    `json:"cursor,omitempty"`
	Follow     bool      `json:"follow,omitempty"`
	Tail       int       `json:"tail,omitempty"`
	Since      time.Time `json:"since,omitempty"`
	Stream     string    `json:"stream,omitempty"`
	Timestamps bool      `json:"timestamps,omitempty"`
}

// LogsChunk is the next piece of output. An empty chunk that is not EOF
// means nothing new yet (while following).
type LogsChunk struct {
	Cursor string `json:"cursor"`
	Data   []byte `json:"data,omitempty"`
	EOF    bool   `json:"eof,omitempty"`
	Err    *Error `json:"error,omitempty"`
}

// InspectRequest asks a cluster member for one box's BoxInspect (what
// boxsup inspect shows), assembled on the member, its spec redacted there:
// no secret crosses hosts in the reply. The reply is a BoxInspect, or an
// Error.
type InspectRequest struct {
	ID string `json:"id"`
}
