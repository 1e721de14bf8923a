package logging

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// plainLogger is a logrus logger without boxsup's hook: what an embedder
// would have, wrapped in a FieldLogger of its own.
func plainLogger() (*logrus.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetLevel(logrus.TraceLevel)
	l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	return l, &buf
}

// An embedder's own FieldLogger (neither Logger nor Entry) still never
// receives a secret, and keeps every entry's fields and level.
func TestRedactingWrapsAnyFieldLogger(t *testing.T) {
	token := sentinel(t, "tok")
	pem, bodyLines := fakePEM(t)
	t.Cleanup(RegisterSecrets(token, pem))
	inner, buf := plainLogger()
	got, err := Redacting(otherLogger{inner.WithField("app", "orchestrator")})
	if err != nil {
		t.Fatal(err)
	}
	private, ok := got.(*logrus.Logger)
	if !ok {
		t.Fatalf("Redacting(other) = %T, want the private forwarding logger", got)
	}
	logEverywhere(private, token, pem, bodyLines)
	out := buf.String()
	assertNoLeak(t, out, token, pem, bodyLines)
	for _, want := range []string{"app=orchestrator", "level=warning", "level=debug", "level=error", "stringer=", "error=\"auth failed with"} {
		if !strings.Contains(out, want) {
			t.Errorf("forwarded output lacks %q:\n%s", want, out)
		}
	}
	if LevelEnabled(otherLogger{inner}, logrus.DebugLevel) || !LevelEnabled(otherLogger{inner}, logrus.InfoLevel) {
		t.Error("LevelEnabled over an unknown FieldLogger should assume Info")
	}
}

// A *logrus.Entry keeps its fields; its logger gets the hook.
func TestRedactingKeepsAnEntry(t *testing.T) {
	token := sentinel(t, "tok")
	t.Cleanup(RegisterSecrets(token))
	inner, buf := plainLogger()
	entry := inner.WithField("app", "orchestrator")
	got, err := Redacting(entry)
	if err != nil || got != logrus.FieldLogger(entry) {
		t.Fatalf("Redacting(entry) = %v, %v; want the entry itself", got, err)
	}
	got.WithField("k", token).Info("hello")
	if out := buf.String(); strings.Contains(out, token) || !strings.Contains(out, "app=orchestrator") {
		t.Fatalf("output %q", out)
	}
	inner.SetLevel(logrus.InfoLevel)
	if LevelEnabled(entry, logrus.DebugLevel) {
		t.Error("LevelEnabled(entry) ignores its logger's level")
	}
}
