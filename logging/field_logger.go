package logging

import (
	"io"

	"github.com/sirupsen/logrus"
)

// Redacting returns a logger that writes to l with secrets scrubbed, for an
// embedder that hands boxsup a logger of its own.
//
//   - A *logrus.Logger gets the redaction hook (InstallRedaction) and is
//     returned as is.
//   - A *logrus.Entry keeps its fields; its Logger gets the hook.
//   - Any other logrus.FieldLogger is wrapped: entries pass through the
//     redaction hook of a private logger, then reach l with their fields, at
//     their level (Panic and Fatal arrive as Error: a library never ends the
//     embedder's process through its logger). Debug and Trace entries are
//     built even if l drops them, since l's level cannot be read.
//
// A nil l means New(Options{}): $BOXSUP_LOG's level, text on stderr.
func Redacting(l logrus.FieldLogger) (logrus.FieldLogger, error) {
	switch l := l.(type) {
	case nil:
		return New(Options{})
	case *logrus.Logger:
		InstallRedaction(l)
		return l, nil
	case *logrus.Entry:
		if l.Logger == nil {
			break
		}
		InstallRedaction(l.Logger)
		return l, nil
	}
	private := logrus.New()
	private.SetOutput(io.Discard)
	private.SetFormatter(discardFormatter{})
	private.SetLevel(logrus.TraceLevel)
	private.AddHook(forwardHook{to: l})
	InstallRedaction(private) // first, so the forward hook sees scrubbed entries
	return private, nil
}

// LevelEnabled reports whether l logs at level: exactly for a
// *logrus.Logger or *logrus.Entry, and for any other FieldLogger only at
// Info and above, whose level it cannot read.
func LevelEnabled(l logrus.FieldLogger, level logrus.Level) bool {
	switch l := l.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(level)
	case *logrus.Entry:
		if l.Logger != nil {
			return l.Logger.IsLevelEnabled(level)
		}
	}
	return level <= logrus.InfoLevel
}

// forwardHook hands each (already redacted) entry of a private logger to the
// embedder's FieldLogger.
type forwardHook struct{ to logrus.FieldLogger }

func (forwardHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h forwardHook) Fire(e *logrus.Entry) error {
	out := h.to
	if len(e.Data) > 0 {
		out = out.WithFields(e.Data)
	}
	switch e.Level {
	case logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel:
		out.Error(e.Message)
	case logrus.WarnLevel:
		out.Warn(e.Message)
	case logrus.InfoLevel:
		out.Info(e.Message)
	default:
		out.Debug(e.Message)
	}
	return nil
}

// discardFormatter spares the private logger formatting entries that it
// only discards.
type discardFormatter struct{}

func (discardFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }
