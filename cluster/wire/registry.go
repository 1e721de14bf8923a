package wire

import (
	"reflect"
	"sort"

	"github.com/boxsup/boxsup/messages"
)

// Version is the wire format this build speaks. Bump it when the meaning of
// an existing message changes in a way an older peer would misread; adding a
// message type does not need a bump (an old peer answers ErrUnknownType).
const Version uint32 = 1

// MaxPayload bounds a payload, as gRPC's default message size bounds a
// batch: a bigger one is refused before it is parsed.
const MaxPayload = 4 << 20

// registry maps a wire type name to the Go type it decodes into. The names
// are the Go type names of package messages: stable, and what an operator
// reads in an error.
var registry = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, v := range []any{
		// Requests.
		messages.StartBox{}, messages.StartExisting{}, messages.Stop{}, messages.Kill{},
		messages.SignalBox{}, messages.Remove{}, messages.Adopt{}, messages.UpdateBox{}, messages.StatusRequest{},
		messages.ListRequest{}, messages.MetricsRequest{}, messages.MetricsAllRequest{},
		// Cluster requests and replies.
		messages.NodeInfoRequest{}, messages.NodeInfo{}, messages.EventsSubscribe{}, messages.EventsUnsubscribe{},
		messages.LogsRequest{}, messages.LogsChunk{}, messages.InspectRequest{}, messages.BoxInspect{},
		// Replies.
		messages.BoxStatus{}, messages.ListResponse{}, messages.MetricsResponse{},
		messages.MetricsAllResponse{}, messages.Error{},
		// Events.
		messages.BoxStarted{}, messages.BoxReady{}, messages.BoxExited{}, messages.BoxRestarting{},
		messages.BoxAdopted{}, messages.BoxFailed{}, messages.BoxRemoved{}, messages.EventsLagged{}, messages.BoxExit{},
		messages.BoxHealthy{}, messages.BoxUnhealthy{},
	} {
		t := reflect.TypeOf(v)
		m[t.Name()] = t
	}
	return m
}()

// names is the inverse of registry.
var names = func() map[reflect.Type]string {
	m := make(map[reflect.Type]string, len(registry))
	for name, t := range registry {
		m[t] = name
	}
	return m
}()

// TypeNames lists the registered type names, sorted.
func TypeNames() []string {
	out := make([]string, 0, len(registry))
	for name := range registry {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}
