package logging

import (
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/messages"
)

// LevelEnv is the environment variable read when Options.Level is empty.
const LevelEnv = "BOXSUP_LOG"

// Standard field names used across boxsup's logs.
const (
	FieldBoxID     = "box_id"
	FieldPID       = "pid"
	FieldGen       = "gen"
	FieldEngine    = "engine"
	FieldJSONBytes = "json_bytes"
)

// Options configures New.
type Options struct {
	// Level is trace, debug, info, warn or error. Empty means $BOXSUP_LOG,
	// and info when that is empty too.
	Level string
	// Format is text or json. Empty means text.
	Format string
	// Out receives the log lines. Nil means standard error.
	Out io.Writer
}

// New returns a logrus logger configured by o, with the redaction hook
// installed. A bad level or format is a messages.ErrBadSpec error.
func New(o Options) (*logrus.Logger, error) {
	levelText, source := o.Level, "log level"
	if levelText == "" {
		levelText, source = os.Getenv(LevelEnv), LevelEnv
	}
	level, err := ParseLevel(levelText)
	if err != nil {
		return nil, messages.Errorf(messages.ErrBadSpec, "%s %q: want trace, debug, info, warn or error", source, levelText)
	}
	formatter, err := newFormatter(o.Format)
	if err != nil {
		return nil, err
	}
	out := o.Out
	if out == nil {
		out = os.Stderr
	}
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(level)
	l.SetFormatter(formatter)
	InstallRedaction(l)
	return l, nil
}

// ParseLevel maps trace, debug, info, warn (or warning) and error, in any
// case, to a logrus level; empty means info. Fatal and panic are refused:
// boxsup never wants a log call to end the process.
func ParseLevel(s string) (logrus.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return logrus.TraceLevel, nil
	case "debug":
		return logrus.DebugLevel, nil
	case "", "info":
		return logrus.InfoLevel, nil
	case "warn", "warning":
		return logrus.WarnLevel, nil
	case "error":
		return logrus.ErrorLevel, nil
	}
	return 0, messages.Errorf(messages.ErrBadSpec, "log level %q: want trace, debug, info, warn or error", s)
}

func newFormatter(format string) (logrus.Formatter, error) {
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "", "text":
		return &logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano, QuoteEmptyFields: true}, nil
	case "json":
		return &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}, nil
	}
	return nil, messages.Errorf(messages.ErrBadSpec, "log format %q: want text or json", format)
}

// InstallRedaction makes l redact secrets: it puts the redaction hook first
// in every level's hook list, so that hooks the logger already has (one
// that ships entries elsewhere, say) see scrubbed entries too. It is
// idempotent: a logger that already has the hook keeps exactly one, moved to
// the front. Call it before l is shared (it replaces l's hook table, so a
// hook added concurrently could be lost). actors.NewSupervisor calls it on
// any logger it is given.
func InstallRedaction(l *logrus.Logger) {
	hooks := make(logrus.LevelHooks, len(logrus.AllLevels))
	for _, level := range logrus.AllLevels {
		hooks[level] = append(hooks[level], redactionHook)
		for _, h := range l.Hooks[level] {
			if _, ours := h.(*RedactionHook); !ours {
				hooks[level] = append(hooks[level], h)
			}
		}
	}
	l.ReplaceHooks(hooks)
}

// redactionHook is the one hook InstallRedaction installs everywhere.
var redactionHook = NewRedactionHook()

// Fields returns the fields that identify one run of a box in a log line:
// box_id, pid and gen (the generation).
func Fields(boxID string, pid int, gen uint64) logrus.Fields {
	return logrus.Fields{FieldBoxID: boxID, FieldPID: pid, FieldGen: gen}
}
