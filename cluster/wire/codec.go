package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// The errors of Encode and Decode. Compare with errors.Is.
var (
	// ErrUnknownType: the message's type is not in the registry (encoding),
	// or the envelope names a type this build does not know (decoding).
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrUnsupportedVersion: the envelope's wire version is not Version.
	ErrUnsupportedVersion = errors.New("wire: unsupported wire version")
	// ErrMalformed: a nil or oversized envelope, or a payload that is not
	// exactly the JSON of its type.
	ErrMalformed = errors.New("wire: malformed message")
)

// Encode wraps a message of package messages (a pointer, as actors send
// them, or a value) into an Envelope. A type outside the registry is
// ErrUnknownType: nothing is sent that the peer could not name.
func Encode(msg any) (*Envelope, error) {
	name, err := TypeName(msg)
	if err != nil {
		return nil, err
	}
	payload, err := json.Marshal(msg)
	if err != nil {
		// The type's name is safe to print; its content is not.
		return nil, fmt.Errorf("%w: encoding %s: %v", ErrMalformed, name, err)
	}
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrMalformed, name, len(payload), MaxPayload)
	}
	return &Envelope{Type: name, Version: Version, Payload: payload}, nil
}

// TypeName returns the registry name of msg's type (a pointer or a value),
// or ErrUnknownType.
func TypeName(msg any) (string, error) {
	t := reflect.TypeOf(msg)
	if t != nil && t.Kind() == reflect.Pointer {
		if reflect.ValueOf(msg).IsNil() {
			return "", fmt.Errorf("%w: nil %v", ErrMalformed, t)
		}
		t = t.Elem()
	}
	name, ok := names[t]
	if !ok {
		return "", fmt.Errorf("%w: %v", ErrUnknownType, t)
	}
	return name, nil
}

// Decode returns the message an Envelope carries, always as a pointer (e.g.
// *messages.StartBox), which is how actors receive messages. It never
// panics on bad input: every defect is an error that wraps ErrUnknownType,
// ErrUnsupportedVersion or ErrMalformed.
func Decode(env *Envelope) (any, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrMalformed)
	}
	if env.GetVersion() != Version {
		return nil, fmt.Errorf("%w: %d (this build speaks %d)", ErrUnsupportedVersion, env.GetVersion(), Version)
	}
	t, ok := registry[env.GetType()]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, truncate(env.GetType(), 64))
	}
	if len(env.GetPayload()) > MaxPayload {
		return nil, fmt.Errorf("%w: %s payload of %d bytes, more than %d", ErrMalformed, env.GetType(), len(env.GetPayload()), MaxPayload)
	}
	out := reflect.New(t)
	dec := json.NewDecoder(bytes.NewReader(env.GetPayload()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrMalformed, env.GetType(), describeJSONError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: %s: trailing data after the message", ErrMalformed, env.GetType())
	}
	return out.Interface(), nil
}

// describeJSONError says what is wrong with a payload without quoting it:
// some of encoding/json's errors (and time's) carry a piece of the input,
// which may be a secret.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: wrong JSON type for %v", truncate(typ.Field, 64), typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The field's name comes from the peer but is not a value.
		return truncate(err.Error(), 100) + " (not honoured by this build)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "payload does not decode"
}

// truncate shortens an untrusted string before it reaches an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
