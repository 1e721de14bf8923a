package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/messages"
)

func TestNewLevels(t *testing.T) {
	for text, want := range map[string]logrus.Level{
		"trace": logrus.TraceLevel, "debug": logrus.DebugLevel, "info": logrus.InfoLevel,
		"warn": logrus.WarnLevel, "warning": logrus.WarnLevel, "error": logrus.ErrorLevel,
		"DEBUG": logrus.DebugLevel, " info ": logrus.InfoLevel,
	} {
		l, err := New(Options{Level: text})
		if err != nil {
			t.Errorf("New(level %q): %v", text, err)
			continue
		}
		if l.GetLevel() != want {
			t.Errorf("New(level %q) level = %v, want %v", text, l.GetLevel(), want)
		}
	}
}

func TestNewLevelFromEnvironment(t *testing.T) {
	t.Setenv(LevelEnv, "debug")
	l, err := New(Options{})
	if err != nil || l.GetLevel() != logrus.DebugLevel {
		t.Fatalf("with %s=debug: level %v, %v", LevelEnv, l.GetLevel(), err)
	}
	l, err = New(Options{Level: "error"})
	if err != nil || l.GetLevel() != logrus.ErrorLevel {
		t.Fatalf("Options.Level must win over %s: level %v, %v", LevelEnv, l.GetLevel(), err)
	}
	t.Setenv(LevelEnv, "")
	l, err = New(Options{})
	if err != nil || l.GetLevel() != logrus.InfoLevel {
		t.Fatalf("default: level %v, %v; want info", l.GetLevel(), err)
	}
	if l.Out != os.Stderr {
		t.Errorf("default output is %v, want os.Stderr", l.Out)
	}
	t.Setenv(LevelEnv, "loud")
	_, err = New(Options{})
	if !errors.Is(err, messages.ErrBadSpec) || !strings.Contains(err.Error(), LevelEnv) || !strings.Contains(err.Error(), `"loud"`) {
		t.Fatalf("bad %s: %v, want ErrBadSpec naming the variable and value", LevelEnv, err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{Level: "fatal"}, {Level: "panic"}, {Level: "verbose"}, {Format: "xml"}, {Format: "logfmt"}} {
		if _, err := New(o); !errors.Is(err, messages.ErrBadSpec) {
			t.Errorf("New(%+v) = %v, want ErrBadSpec", o, err)
		}
	}
}

func TestNewFormats(t *testing.T) {
	l, buf := newTestLogger(t, "json")
	l.WithFields(Fields("web", 42, 7)).Info("started")
	lines := jsonLines(t, buf.Bytes())
	if len(lines) != 1 {
		t.Fatalf("want 1 JSON line, got %d: %s", len(lines), buf)
	}
	m := lines[0]
	if m["msg"] != "started" || m["level"] != "info" || m["box_id"] != "web" || m["pid"] != 42.0 || m["gen"] != 7.0 || m["time"] == nil {
		t.Errorf("JSON line = %v", m)
	}

	l, buf = newTestLogger(t, "text")
	l.WithFields(Fields("web", 42, 7)).Info("started")
	for _, want := range []string{"level=info", "msg=started", "box_id=web", "pid=42", "gen=7"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text line %q lacks %q", buf, want)
		}
	}
}

func TestInstallRedactionOnce(t *testing.T) {
	l := logrus.New()
	InstallRedaction(l)
	InstallRedaction(l)
	for _, level := range logrus.AllLevels {
		if n := len(l.Hooks[level]); n != 1 {
			t.Errorf("level %v has %d hooks, want 1", level, n)
		}
	}
	nl, _ := newTestLogger(t, "text")
	InstallRedaction(nl)
	if n := len(nl.Hooks[logrus.InfoLevel]); n != 1 {
		t.Errorf("New's logger got a second hook: %d", n)
	}
}

// seeingHook records the messages a hook after the redaction hook sees.
type seeingHook struct{ seen []string }

func (h *seeingHook) Levels() []logrus.Level { return logrus.AllLevels }
func (h *seeingHook) Fire(e *logrus.Entry) error {
	h.seen = append(h.seen, e.Message+" "+fmt.Sprint(e.Data["err"]))
	return nil
}

// TestInstallRedactionGoesFirst: an embedder's hook added before
// InstallRedaction sees scrubbed entries, at every level.
func TestInstallRedactionGoesFirst(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.TraceLevel)
	mine := &seeingHook{}
	l.AddHook(mine)
	InstallRedaction(l)
	defer Register("hook-order-sentinel-5f1e").Release()
	l.WithField("err", errors.New("bad hook-order-sentinel-5f1e")).Debug("value hook-order-sentinel-5f1e")
	if len(mine.seen) != 1 || strings.Contains(mine.seen[0], "sentinel") {
		t.Errorf("the embedder's hook saw %q", mine.seen)
	}
}
