package logging

import (
	"context"
	"log/slog"
	"maps"

	"github.com/sirupsen/logrus"
)

// NewSlogHandler returns a slog.Handler that writes into log, so that
// libraries logging through log/slog (protoactor) end up in boxsup's logrus
// output, with its formatter and its redaction hook. Levels map down to the
// nearest logrus level (below Debug → Trace, Debug, Info, Warn, Error and
// above → Error; never Fatal or Panic). Attributes become fields; a group's
// attributes are named "group.key". Records below minLevel are dropped, and
// so are records the logrus logger's own level would drop (Enabled says so,
// so slog does not even build them).
func NewSlogHandler(log logrus.FieldLogger, minLevel slog.Level) slog.Handler {
	return &slogHandler{log: log, min: minLevel}
}

type slogHandler struct {
	log    logrus.FieldLogger
	min    slog.Level
	fields logrus.Fields // from WithAttrs, already prefixed; never mutated once set
	prefix string        // from WithGroup: "a.b." or ""
}

// logrusLevel maps a slog level to the logrus level that covers it.
func logrusLevel(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.InfoLevel
	case l >= slog.LevelDebug:
		return logrus.DebugLevel
	}
	return logrus.TraceLevel
}

// Enabled implements slog.Handler.
func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	if l < h.min {
		return false
	}
	switch x := h.log.(type) {
	case *logrus.Logger:
		return x.IsLevelEnabled(logrusLevel(l))
	case *logrus.Entry:
		return x.Logger.IsLevelEnabled(logrusLevel(l))
	}
	return true // an unknown FieldLogger filters for itself
}

// Handle implements slog.Handler.
func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level < h.min {
		return nil
	}
	fields := make(logrus.Fields, len(h.fields)+r.NumAttrs())
	maps.Copy(fields, h.fields)
	r.Attrs(func(a slog.Attr) bool {
		addAttr(fields, h.prefix, a)
		return true
	})
	entry := h.log.WithFields(fields)
	if !r.Time.IsZero() {
		entry = entry.WithTime(r.Time)
	}
	entry.Log(logrusLevel(r.Level), r.Message)
	return nil
}

// WithAttrs implements slog.Handler.
func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.fields = make(logrus.Fields, len(h.fields)+len(attrs))
	maps.Copy(c.fields, h.fields)
	for _, a := range attrs {
		addAttr(c.fields, h.prefix, a)
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.prefix = h.prefix + name + "."
	return &c
}

// addAttr stores a as a field named prefix+key, following slog's rules:
// LogValuers are resolved (a messages.Secret becomes [REDACTED]), empty
// attributes and empty groups are dropped, a group without a key is inlined.
func addAttr(fields logrus.Fields, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p = prefix + a.Key + "."
		}
		for _, g := range a.Value.Group() {
			addAttr(fields, p, g)
		}
		return
	}
	fields[prefix+a.Key] = slogValue(a.Value)
}

// slogValue converts a resolved, non-group slog value to a plain Go value.
func slogValue(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration()
	case slog.KindTime:
		return v.Time()
	}
	return v.Any()
}
