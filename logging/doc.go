// Package logging sets up boxsup's logrus logger and keeps secrets out of it.
//
// Secrets are kept out in layers: messages.Secret prints as [REDACTED]
// through fmt and slog; RedactionHook, installed first by New and by
// InstallRedaction (on any logger an embedder hands over), scrubs every value
// registered with Register from the message and every field, and turns
// any field that is not a plain number or string into scrubbed text (so the
// JSON formatter never marshals a Secret's value); and the raw spec JSON is
// never logged: EmitRedactedConfigTrace logs only its size. A test patrols the
// source tree for logging calls that take the spec or its JSON.
//
// Scrubbing is one pass of an Aho–Corasick automaton over the text, whatever
// the number of secrets, and the automaton is updated in place when a box's
// secrets are registered or released (see aho.go), so neither cost grows
// with the number of boxes.
//
// NewSlogHandler routes log/slog records (protoactor's own logs) into the
// same logger, through the same hook.
package logging
