package logging

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/messages"
)

func TestSlogLevelMapping(t *testing.T) {
	l, buf := newTestLogger(t, "json")
	sl := slog.New(NewSlogHandler(l, slog.Level(-100)))
	cases := []struct {
		level slog.Level
		want  string
	}{
		{slog.LevelDebug - 4, "trace"},
		{slog.LevelDebug - 1, "trace"},
		{slog.LevelDebug, "debug"},
		{slog.LevelInfo - 1, "debug"},
		{slog.LevelInfo, "info"},
		{slog.LevelWarn - 1, "info"},
		{slog.LevelWarn, "warning"},
		{slog.LevelError, "error"},
		{slog.LevelError + 4, "error"},
	}
	for _, c := range cases {
		sl.Log(context.Background(), c.level, "lvl "+c.level.String())
	}
	lines := jsonLines(t, buf.Bytes())
	if len(lines) != len(cases) {
		t.Fatalf("got %d lines, want %d: %s", len(lines), len(cases), buf)
	}
	for i, c := range cases {
		if lines[i]["level"] != c.want || lines[i]["msg"] != "lvl "+c.level.String() {
			t.Errorf("slog level %v logged as %v (%v), want %s", c.level, lines[i]["level"], lines[i]["msg"], c.want)
		}
	}
}

func TestSlogMinimumAndLogrusLevel(t *testing.T) {
	ctx := context.Background()
	l, buf := newTestLogger(t, "json")
	h := NewSlogHandler(l, slog.LevelInfo)
	if h.Enabled(ctx, slog.LevelDebug) {
		t.Error("Enabled(debug) with min info")
	}
	if !h.Enabled(ctx, slog.LevelInfo) {
		t.Error("not Enabled(info) with min info and a trace logger")
	}
	sl := slog.New(h)
	sl.Debug("dropped by min")
	// A record handed straight to Handle is filtered too.
	_ = h.Handle(ctx, slog.NewRecord(time.Now(), slog.LevelDebug, "dropped by Handle", 0))
	sl.Info("kept")

	l.SetLevel(logrus.WarnLevel)
	if h.Enabled(ctx, slog.LevelInfo) {
		t.Error("Enabled(info) while the logrus logger is at warn")
	}
	if !h.Enabled(ctx, slog.LevelWarn) {
		t.Error("not Enabled(warn) while the logrus logger is at warn")
	}
	sl.Info("dropped by logrus")
	sl.Warn("kept too")

	entryHandler := NewSlogHandler(l.WithField("lib", "proto"), slog.LevelDebug)
	if entryHandler.Enabled(ctx, slog.LevelInfo) || !entryHandler.Enabled(ctx, slog.LevelError) {
		t.Error("a handler over an *Entry does not follow its logger's level")
	}
	slog.New(entryHandler).Error("from entry")

	var msgs []string
	for _, m := range jsonLines(t, buf.Bytes()) {
		msgs = append(msgs, m["msg"].(string))
		if m["msg"] == "from entry" && m["lib"] != "proto" {
			t.Errorf("the entry's fields were lost: %v", m)
		}
	}
	if got := strings.Join(msgs, ","); got != "kept,kept too,from entry" {
		t.Errorf("logged %q, want kept,kept too,from entry", got)
	}
}

func TestSlogAttrsAndGroups(t *testing.T) {
	l, buf := newTestLogger(t, "json")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sl := slog.New(NewSlogHandler(l, slog.LevelDebug)).
		With("top", "t").
		WithGroup("g").
		With("a", 1).
		WithGroup("h")
	sl.Info("grouped",
		"b", 2,
		slog.Group("inner", "c", 3, slog.Bool("ok", true)),
		slog.Group("", "d", 4), // a group without a key is inlined
		slog.Group("empty"),    // an empty group is dropped
		slog.Duration("took", 1500*time.Millisecond),
		slog.Time("at", at),
		slog.Float64("ratio", 0.5),
		slog.Any("list", []int{1, 2}),
		slog.Attr{}, // an empty attr is dropped
	)
	sl.WithGroup("").Info("no group added")

	lines := jsonLines(t, buf.Bytes())
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d: %s", len(lines), buf)
	}
	m := lines[0]
	want := map[string]any{
		"top": "t", "g.a": 1.0, "g.h.b": 2.0, "g.h.inner.c": 3.0, "g.h.inner.ok": true, "g.h.d": 4.0,
		"g.h.took": float64(1500 * time.Millisecond), "g.h.at": at.Format(time.RFC3339), "g.h.ratio": 0.5, "g.h.list": "[1 2]",
		"msg": "grouped", "level": "info",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("field %q = %#v, want %#v", k, m[k], v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok && k != "time" {
			t.Errorf("unexpected field %q = %v", k, m[k])
		}
	}
	if lines[1]["msg"] != "no group added" || lines[1]["g.a"] != 1.0 {
		t.Errorf("second line = %v", lines[1])
	}
}

func TestSlogRecordTimeIsKept(t *testing.T) {
	l, buf := newTestLogger(t, "json")
	h := NewSlogHandler(l, slog.LevelInfo)
	at := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := h.Handle(context.Background(), slog.NewRecord(at, slog.LevelInfo, "old", 0)); err != nil {
		t.Fatal(err)
	}
	lines := jsonLines(t, buf.Bytes())
	if len(lines) != 1 || lines[0]["time"] != at.Format(time.RFC3339Nano) {
		t.Errorf("lines = %v, want the record's time %s", lines, at.Format(time.RFC3339Nano))
	}
}

func TestSlogSecretsRedacted(t *testing.T) {
	registered := sentinel(t, "slogreg")
	t.Cleanup(RegisterSecrets(registered))
	unregistered := sentinel(t, "slogunreg")
	for _, format := range []string{"json", "text"} {
		l, buf := newTestLogger(t, format)
		sl := slog.New(NewSlogHandler(l, slog.LevelDebug))
		sl.With("pre", messages.NewSecret(unregistered)).Info("secret attrs "+registered,
			"secret", messages.NewSecret(unregistered),
			slog.Group("grp", slog.Any("secret", messages.NewSecret(unregistered))),
			"plain", "has "+registered,
			"spec", specWithSecrets(unregistered, unregistered),
		)
		out := buf.String()
		if strings.Contains(out, registered) || strings.Contains(out, unregistered) {
			t.Errorf("%s: a secret reached the output: %s", format, out)
		}
		if format == "json" {
			m := jsonLines(t, buf.Bytes())[0]
			for _, k := range []string{"pre", "secret", "grp.secret"} {
				if m[k] != messages.Redacted {
					t.Errorf("field %q = %v, want %s", k, m[k], messages.Redacted)
				}
			}
		}
	}
}

// otherLogger is a FieldLogger that is neither a Logger nor an Entry.
type otherLogger struct{ logrus.FieldLogger }

func TestSlogUnknownFieldLoggerIsEnabled(t *testing.T) {
	l, buf := newTestLogger(t, "text")
	h := NewSlogHandler(otherLogger{l}, slog.LevelInfo)
	if !h.Enabled(context.Background(), slog.LevelInfo) || h.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled over an unknown FieldLogger should only apply min")
	}
	slog.New(h).Info("through wrapper", "k", "v")
	if !strings.Contains(buf.String(), "k=v") {
		t.Errorf("output %q lacks the attribute", buf)
	}
}
