package control

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/boxsup/boxsup/messages"
)

// eventDecoders lists the event kinds this version carries over the control
// socket, each with the decoder into its value type (the supervisor
// publishes events as values). Adding a kind is one row.
var eventDecoders = map[string]func(json.RawMessage) (messages.Event, error){
	"BoxStarted":    decodeAs[messages.BoxStarted],
	"BoxReady":      decodeAs[messages.BoxReady],
	"BoxExited":     decodeAs[messages.BoxExited],
	"BoxRestarting": decodeAs[messages.BoxRestarting],
	"BoxAdopted":    decodeAs[messages.BoxAdopted],
	"BoxFailed":     decodeAs[messages.BoxFailed],
	"BoxRemoved":    decodeAs[messages.BoxRemoved],
	"BoxHealthy":    decodeAs[messages.BoxHealthy],
	"BoxUnhealthy":  decodeAs[messages.BoxUnhealthy],
	"EventsLagged":  decodeAs[messages.EventsLagged],
}

func decodeAs[T messages.Event](data json.RawMessage) (messages.Event, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// EventKinds lists, sorted, the event kinds this version carries over the
// control socket, for checking a filter (a kind nobody sends would select
// nothing, silently).
func EventKinds() []string { return slices.Sorted(maps.Keys(eventDecoders)) }

// encodeEvent puts an event on the wire.
func encodeEvent(ev messages.Event) (*EventLine, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return &EventLine{Kind: ev.Kind(), Data: data}, nil
}

// decodeEvent takes an event off the wire; a kind this version does not
// know is skipped (nil, nil): a newer server may add some.
func decodeEvent(line *EventLine) (messages.Event, error) {
	decode, ok := eventDecoders[line.Kind]
	if !ok {
		return nil, nil
	}
	ev, err := decode(line.Data)
	if err != nil {
		return nil, messages.Errorf(messages.ErrInternal, "control: decoding a %s event: %v", line.Kind, err)
	}
	return ev, nil
}
