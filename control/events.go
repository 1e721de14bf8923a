package control

import (
	"encoding/json"

	"github.com/boxsup/boxsup/messages"
)

// newEvent returns a fresh value of the event type kind names, for
// decoding, or nil for a kind this version does not know.
func newEvent(kind string) messages.Event {
	switch kind {
	case "BoxStarted":
		return &messages.BoxStarted{}
	case "BoxReady":
		return &messages.BoxReady{}
	case "BoxExited":
		return &messages.BoxExited{}
	case "BoxRestarting":
		return &messages.BoxRestarting{}
	case "BoxAdopted":
		return &messages.BoxAdopted{}
	case "BoxFailed":
		return &messages.BoxFailed{}
	case "BoxRemoved":
		return &messages.BoxRemoved{}
	case "EventsLagged":
		return &messages.EventsLagged{}
	}
	return nil
}

// EventKinds lists the event kinds this version carries over the control
// socket, for checking a filter (a kind nobody publishes would select
// nothing, silently).
func EventKinds() []string {
	return []string{"BoxStarted", "BoxReady", "BoxExited", "BoxRestarting", "BoxAdopted", "BoxFailed", "BoxRemoved", "EventsLagged"}
}

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
	ev := newEvent(line.Kind)
	if ev == nil {
		return nil, nil
	}
	if err := json.Unmarshal(line.Data, ev); err != nil {
		return nil, messages.Errorf(messages.ErrInternal, "control: decoding a %s event: %v", line.Kind, err)
	}
	// The events are delivered as values, as the supervisor publishes them.
	switch e := ev.(type) {
	case *messages.BoxStarted:
		return *e, nil
	case *messages.BoxReady:
		return *e, nil
	case *messages.BoxExited:
		return *e, nil
	case *messages.BoxRestarting:
		return *e, nil
	case *messages.BoxAdopted:
		return *e, nil
	case *messages.BoxFailed:
		return *e, nil
	case *messages.BoxRemoved:
		return *e, nil
	case *messages.EventsLagged:
		return *e, nil
	}
	return ev, nil
}
