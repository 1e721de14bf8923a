package actors_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/messages"
)

// wrappedLogger is a FieldLogger that is neither a *logrus.Logger nor a
// *logrus.Entry, as an embedder's adapter would be.
type wrappedLogger struct{ *logrus.Entry }

// TestEveryConfigLoggerIsScrubbed: whatever logger an embedder gives
// (a plain logrus.New(), as README's example does, an Entry with fields, or
// an adapter of its own), nothing boxsup logs through it at trace carries a
// box's secret: not on a start refused because a path holds it, not on a
// failed start (the box's secrets stay registered until its last line),
// not on a run and its stop
// (issue: a debug "box runner exited" line leaked through README's logger,
// and "box failed to start reason=..." at info).
func TestEveryConfigLoggerIsScrubbed(t *testing.T) {
	t.Parallel()
	for name, newLogger := range map[string]func(*logrus.Logger) logrus.FieldLogger{
		"*logrus.Logger": func(l *logrus.Logger) logrus.FieldLogger { return l },
		"*logrus.Entry":  func(l *logrus.Logger) logrus.FieldLogger { return l.WithField("app", "embedder") },
		"an adapter":     func(l *logrus.Logger) logrus.FieldLogger { return wrappedLogger{l.WithField("app", "embedder")} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const sentinel = "s3ntinel-embedder-Zq81"
			out := &testutil.SyncBuffer{}
			base := logrus.New()
			base.SetOutput(out)
			base.SetLevel(logrus.TraceLevel)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sup, err := actors.NewSupervisor(ctx, actors.Config{Home: t.TempDir(), ShimBinary: shimBinary, Logger: newLogger(base)})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := sup.Shutdown(ctx, actors.StopAll); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
				log := out.String()
				if strings.Contains(log, sentinel) {
					t.Errorf("the secret reached the embedder's logger:\n%s", log)
				}
				if !strings.Contains(log, "level=debug") {
					t.Errorf("nothing was logged at debug: the check proves little:\n%s", log)
				}
			}()
			secret := []messages.SecretVar{{Name: "TOKEN", Value: messages.NewSecret(sentinel)}}
			// A path that holds the secret is refused before anything runs.
			_, err = sup.Start(ctx, messages.StartBox{ID: "inpath", Spec: messages.InstanceSpec{
				GuestEntrypoint: messages.Entrypoint{Executable: "/nonexistent/" + sentinel + "/prog"}, Secrets: secret}})
			if !errors.Is(err, messages.ErrBadSpec) || strings.Contains(err.Error(), sentinel) {
				t.Fatalf("Start with the secret in the executable's path: %v; want ErrBadSpec without the secret", err)
			}
			_, err = sup.Start(ctx, messages.StartBox{ID: "bad", Spec: messages.InstanceSpec{
				GuestEntrypoint: messages.Entrypoint{Executable: "/nonexistent/prog"}, Secrets: secret}})
			if !errors.Is(err, messages.ErrStartFailed) || strings.Contains(err.Error(), sentinel) {
				t.Fatalf("Start of a missing executable: %v; want ErrStartFailed without the secret", err)
			}
			if _, err := sup.Remove(ctx, "bad", true); err != nil {
				t.Fatal(err)
			}
			if _, err := sup.Start(ctx, messages.StartBox{ID: "good", Spec: messages.InstanceSpec{
				GuestEntrypoint: messages.Entrypoint{Executable: "/bin/sleep", Args: []string{"300"}}, Secrets: secret}}); err != nil {
				t.Fatal(err)
			}
			if _, err := sup.Stop(ctx, "good", 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}
