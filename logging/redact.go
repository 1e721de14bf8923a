package logging

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/messages"
)

// MinSecretLen is the shortest value Register accepts: scrubbing a 1–3 byte
// value would mangle ordinary text and protect nothing, which is why
// messages.InstanceSpec.Validate refuses a shorter secret.
const MinSecretLen = messages.MinSecretLen

// MinSecretLineLen is the shortest single line of a multi-line secret that is
// scrubbed on its own (see Register).
const MinSecretLineLen = messages.MinSecretLineLen

// defaultRegistry is the process-wide registry Register fills and every
// RedactionHook reads.
var defaultRegistry = newRegistry()

// Registration is one Register call's hold on its secret values: they are
// scrubbed from every log line until Release. Hold it for as long as
// anything may log about the secrets' owner: for a box, from before its
// spec is first handled until after its last log line (its actor's stop),
// not merely while its shim runs.
type Registration struct {
	once     sync.Once
	patterns []string
}

// Release ends the registration: its values are no longer scrubbed unless
// another registration holds them. Calling it again, or on a nil
// *Registration, does nothing.
func (r *Registration) Release() {
	if r == nil {
		return
	}
	r.once.Do(func() { defaultRegistry.remove(r.patterns) })
}

// Register adds values to the process-wide set that every RedactionHook
// scrubs from log output, until the returned Registration is released.
// Registration is counted: a value registered twice stays until both
// registrations are released. Values shorter than MinSecretLen are ignored
// (messages.InstanceSpec.Validate refuses them in a spec). It costs time in
// proportion to the values' length, whatever else is registered.
//
// Besides each value itself, the hook scrubs the forms in which it commonly
// reaches a log line in pieces or escaped:
//   - the forms fmt and encoding/json give it: Go-quoted and JSON-escaped
//     (a PEM key printed with %q shows its newlines as \n), hexadecimal (%x)
//     and, for a []byte printed with %v, its decimal byte list;
//   - each line, trimmed, of a multi-line value that is at least
//     MinSecretLineLen bytes long, so a PEM private key split across log lines
//     does not leak its body. This also scrubs its BEGIN/END marker lines,
//     which costs nothing worth keeping.
func Register(values ...string) *Registration {
	var patterns []string
	seen := map[string]bool{}
	for _, v := range values {
		if len(v) >= MinSecretLen {
			patterns = appendForms(patterns, seen, v)
		}
	}
	r := &Registration{patterns: patterns}
	if len(patterns) > 0 {
		defaultRegistry.add(patterns)
	}
	return r
}

// RegisterSecrets is Register for callers that want a plain function:
// calling the returned function releases the registration.
func RegisterSecrets(values ...string) (unregister func()) {
	return Register(values...).Release
}

// appendForms appends the patterns that scrub v (see Register), each once.
func appendForms(patterns []string, seen map[string]bool, v string) []string {
	add := func(p string) {
		if len(p) >= MinSecretLen && !seen[p] {
			seen[p] = true
			patterns = append(patterns, p)
		}
	}
	add(v)
	q := strconv.Quote(v)
	add(q[1 : len(q)-1])
	if j, err := json.Marshal(v); err == nil {
		add(string(j[1 : len(j)-1]))
	}
	add(hex.EncodeToString([]byte(v)))
	b := fmt.Sprint([]byte(v))
	add(b[1 : len(b)-1])
	for _, line := range messages.SecretLines(v) {
		add(line)
	}
	return patterns
}

// registry is the refcounted set of patterns and the automaton that finds
// them. Writers (register, release: once per box start and stop) update the
// automaton incrementally under its lock; the hook (every log line) takes
// the lock for reading, and costs one atomic load when nothing is
// registered.
type registry struct {
	mu     sync.Mutex // serialises writers; counts
	counts map[string]int
	ac     *automaton
	active atomic.Int64 // distinct patterns; 0 lets scrub skip the lock
}

func newRegistry() *registry {
	return &registry{counts: map[string]int{}, ac: newAutomaton()}
}

func (r *registry) add(patterns []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ac.mu.Lock()
	defer r.ac.mu.Unlock()
	for _, p := range patterns {
		if r.counts[p]++; r.counts[p] == 1 {
			r.ac.add(p)
		}
	}
	r.active.Store(int64(len(r.counts)))
}

func (r *registry) remove(patterns []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ac.mu.Lock()
	defer r.ac.mu.Unlock()
	for _, p := range patterns {
		switch n := r.counts[p]; {
		case n == 1:
			delete(r.counts, p)
			r.ac.remove(p)
		case n > 1:
			r.counts[p] = n - 1
		}
	}
	r.active.Store(int64(len(r.counts)))
}

// scrub returns s with every occurrence of every pattern replaced by
// [REDACTED]. Where occurrences overlap or touch (one secret containing
// another, or two secrets side by side) their union is replaced as a whole,
// so no fragment of either survives between two markers. It runs in time
// linear in len(s), whatever the number of patterns.
func (r *registry) scrub(s string) string {
	if r == nil || len(s) < MinSecretLen || r.active.Load() == 0 {
		return s
	}
	var buf [8][2]int
	r.ac.mu.RLock()
	spans := r.ac.spans(s, buf[:0])
	r.ac.mu.RUnlock()
	if len(spans) == 0 {
		return s
	}
	var out strings.Builder
	out.Grow(len(s))
	last := 0
	for _, sp := range spans {
		out.WriteString(s[last:sp[0]])
		out.WriteString(messages.Redacted)
		last = sp[1]
	}
	out.WriteString(s[last:])
	return out.String()
}

// contains reports whether s holds any pattern.
func (r *registry) contains(s string) bool {
	if r == nil || len(s) < MinSecretLen || r.active.Load() == 0 {
		return false
	}
	r.ac.mu.RLock()
	defer r.ac.mu.RUnlock()
	return r.ac.contains(s)
}

// RedactionHook is a logrus hook, for every level, that keeps secrets out of
// log output. In the message and in every field it replaces each value
// registered with RegisterSecrets by [REDACTED]. Field values that are not
// plain numbers, booleans, times or durations become scrubbed text: strings
// as they are, []byte as text, errors through Error, fmt.Stringers through
// String and anything else through fmt's %+v (where messages.Secret prints
// [REDACTED]); a messages.Secret field becomes [REDACTED] whether registered
// or not. Without this the JSON formatter would marshal a Secret, or a struct
// holding one, with its value.
//
// It is safe for concurrent use; with no secret registered it costs one
// atomic load and a type switch per field.
type RedactionHook struct {
	reg *registry
}

// NewRedactionHook returns a hook reading the process-wide registry.
func NewRedactionHook() *RedactionHook { return &RedactionHook{reg: defaultRegistry} }

// Levels implements logrus.Hook: every level.
func (h *RedactionHook) Levels() []logrus.Level { return logrus.AllLevels }

// Fire implements logrus.Hook. logrus hands each hook a private copy of the
// entry's field map, so rewriting values in place is safe.
func (h *RedactionHook) Fire(e *logrus.Entry) error {
	sc := h.reg
	e.Message = sc.scrub(e.Message)
	for k, v := range e.Data {
		e.Data[k] = sanitize(sc, v)
	}
	return nil
}

// Scrub returns s with every registered secret replaced by [REDACTED], for
// text that leaves the process other than through a logger (an error reply).
func Scrub(s string) string { return defaultRegistry.scrub(s) }

// ContainsSecret reports whether s contains a registered secret value (in
// any of the forms the hook scrubs). Use it to keep text that cannot be
// scrubbed, such as an environment variable handed to a child process, from
// carrying a secret.
func ContainsSecret(s string) bool { return defaultRegistry.contains(s) }

// sanitize returns a field value that is safe to hand to any formatter.
func sanitize(sc *registry, v any) any {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr,
		float32, float64, time.Duration, time.Time:
		return v
	case string:
		if r := sc.scrub(x); r != x {
			return r
		}
		return v // unchanged: reuse the boxed value rather than allocate a new one
	case messages.Secret, *messages.Secret:
		return messages.Redacted
	case []byte:
		return sc.scrub(string(x))
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = sc.scrub(s)
		}
		return out
	case error, fmt.Stringer:
		// fmt rather than a direct call: it survives a nil receiver or a
		// panicking method.
		return sc.scrub(fmt.Sprint(x))
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return v // a named number (without String) holds no text
	case reflect.String:
		return sc.scrub(reflect.ValueOf(v).String())
	}
	return sc.scrub(fmt.Sprintf("%+v", v))
}
