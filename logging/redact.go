package logging

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/messages"
)

// MinSecretLen is the shortest value RegisterSecrets accepts: scrubbing a
// 1–3 byte value would mangle ordinary text and protect nothing.
const MinSecretLen = 4

// MinSecretLineLen is the shortest single line of a multi-line secret that is
// scrubbed on its own (see RegisterSecrets).
const MinSecretLineLen = 16

// defaultRegistry is the process-wide registry RegisterSecrets fills and
// every RedactionHook reads.
var defaultRegistry = &registry{counts: map[string]int{}}

// RegisterSecrets adds values to the process-wide set that every
// RedactionHook scrubs from log output, and returns a function that removes
// them again. Registration is counted: a value registered twice stays until
// both registrations are removed. Calling the returned function more than
// once has no further effect. Values shorter than MinSecretLen are ignored.
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
func RegisterSecrets(values ...string) (unregister func()) {
	kept := make([]string, 0, len(values))
	for _, v := range values {
		if len(v) >= MinSecretLen {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		return func() {}
	}
	defaultRegistry.add(kept)
	var once sync.Once
	return func() { once.Do(func() { defaultRegistry.remove(kept) }) }
}

// registry is a refcounted set of secret values. Writers (register,
// unregister: rare) rebuild an immutable scrubber under mu; the hook (every
// log line) only loads the current one atomically, so logging never waits on
// a lock and costs one atomic load when nothing is registered.
type registry struct {
	mu     sync.Mutex
	counts map[string]int
	cur    atomic.Pointer[scrubber] // nil when no secret is registered
}

func (r *registry) add(values []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		r.counts[v]++
	}
	r.rebuild()
}

func (r *registry) remove(values []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		if r.counts[v]--; r.counts[v] <= 0 {
			delete(r.counts, v)
		}
	}
	r.rebuild()
}

// rebuild publishes a scrubber for the current values. r.mu must be held.
func (r *registry) rebuild() {
	if len(r.counts) == 0 {
		r.cur.Store(nil)
		return
	}
	seen := map[string]bool{}
	var patterns []string
	addPattern := func(p string) {
		if len(p) >= MinSecretLen && !seen[p] {
			seen[p] = true
			patterns = append(patterns, p)
		}
	}
	for v := range r.counts {
		addPattern(v)
		q := strconv.Quote(v)
		addPattern(q[1 : len(q)-1])
		if j, err := json.Marshal(v); err == nil {
			addPattern(string(j[1 : len(j)-1]))
		}
		addPattern(hex.EncodeToString([]byte(v)))
		b := fmt.Sprint([]byte(v))
		addPattern(b[1 : len(b)-1])
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); len(line) >= MinSecretLineLen {
					addPattern(line)
				}
			}
		}
	}
	// Longest first, for a stable order and so the common case (a whole
	// value) is found before its parts; overlaps are merged in scrub anyway.
	slices.SortFunc(patterns, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	r.cur.Store(&scrubber{patterns: patterns, minLen: len(patterns[len(patterns)-1])})
}

// scrubber replaces every occurrence of its patterns with [REDACTED]. It is
// immutable once published. A nil *scrubber scrubs nothing.
type scrubber struct {
	patterns []string // longest first
	minLen   int      // length of the shortest pattern
}

// scrub returns s with every occurrence of every pattern replaced. Where
// occurrences overlap or touch (one secret containing another, or two secrets
// side by side) their union is replaced as a whole, so no fragment of either
// survives between two markers.
func (sc *scrubber) scrub(s string) string {
	if sc == nil || len(s) < sc.minLen {
		return s
	}
	var spans [][2]int
	for _, p := range sc.patterns {
		for from := 0; from+len(p) <= len(s); {
			i := strings.Index(s[from:], p)
			if i < 0 {
				break
			}
			start := from + i
			spans = append(spans, [2]int{start, start + len(p)})
			from = start + 1 // overlapping occurrences of the same pattern too
		}
	}
	if spans == nil {
		return s
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var out strings.Builder
	out.Grow(len(s))
	last := 0
	for i := 0; i < len(spans); {
		start, end := spans[i][0], spans[i][1]
		for i++; i < len(spans) && spans[i][0] <= end; i++ {
			end = max(end, spans[i][1])
		}
		out.WriteString(s[last:start])
		out.WriteString(messages.Redacted)
		last = end
	}
	out.WriteString(s[last:])
	return out.String()
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
	sc := h.reg.cur.Load()
	e.Message = sc.scrub(e.Message)
	for k, v := range e.Data {
		e.Data[k] = sanitize(sc, v)
	}
	return nil
}

// Scrub returns s with every registered secret replaced by [REDACTED], for
// text that leaves the process other than through a logger (an error reply).
func Scrub(s string) string { return defaultRegistry.cur.Load().scrub(s) }

// ContainsSecret reports whether s contains a registered secret value (in
// any of the forms the hook scrubs). Use it to keep text that cannot be
// scrubbed, such as an environment variable handed to a child process, from
// carrying a secret.
func ContainsSecret(s string) bool { return defaultRegistry.cur.Load().contains(s) }

// contains reports whether s holds any pattern. A nil *scrubber holds none.
func (sc *scrubber) contains(s string) bool {
	if sc == nil || len(s) < sc.minLen {
		return false
	}
	for _, p := range sc.patterns {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// sanitize returns a field value that is safe to hand to any formatter.
func sanitize(sc *scrubber, v any) any {
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
