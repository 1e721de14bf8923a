package messages

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what every formatting path prints instead of a secret's value.
const Redacted = "[REDACTED]"

// Secret holds a sensitive string (a token, a password, a PEM private key).
// It prints as [REDACTED] through fmt (every verb, %v %+v %#v %s %q), String,
// GoString and slog; only encoding/json and Reveal expose the value, because
// the shim must receive it on stdin. Never log a Secret's Reveal().
type Secret struct {
	value string
}

// NewSecret wraps a sensitive value.
func NewSecret(value string) Secret { return Secret{value: value} }

// Reveal returns the plain value. Call it only where the value is handed to
// its consumer (the guest's environment), never where it could be logged.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.value == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter so that no verb, not even %x, prints the value.
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON keeps the value: JSON is how the spec reaches the shim.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.value) }

// UnmarshalJSON reads the value.
func (s *Secret) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &s.value) }

// MarshalText is deliberately not implemented: text encoders (logfmt, yaml)
// would otherwise print the value.
