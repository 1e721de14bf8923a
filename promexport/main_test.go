package promexport

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/control"
	"github.com/boxsup/boxsup/internal/testutil"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// Generous bounds: tests wait on conditions, and these only decide when a
// condition is declared never to come.
const (
	callTimeout  = 30 * time.Second
	waitDeadline = 10 * time.Second
	pollInterval = 10 * time.Millisecond
)

// shimBinary is the reference shim, built once for the package.
var shimBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "boxsup-promexport-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	shimBinary, err = testutil.BuildShim(dir, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	goleak.VerifyTestMain(testutil.Settling(m), goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// newSupervisor opens a supervisor on a fresh home; Cleanup stops every box.
func newSupervisor(t *testing.T) *actors.Supervisor {
	t.Helper()
	buf := &testutil.SyncBuffer{}
	log, err := logging.New(logging.Options{Level: "debug", Out: buf})
	if err != nil {
		t.Fatal(err)
	}
	sup, err := actors.NewSupervisor(context.Background(), actors.Config{Home: t.TempDir(), ShimBinary: shimBinary, Logger: log})
	if err != nil {
		t.Fatalf("NewSupervisor: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		if err := sup.Shutdown(ctx, actors.StopAll); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return sup
}

// serve starts a control server for sup on a socket in its home.
func serve(t *testing.T, sup *actors.Supervisor, opts control.ServerOptions) *control.Server {
	t.Helper()
	srv, err := control.Listen(sup, filepath.Join(sup.Home(), "boxsup.sock"), opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
	})
	return srv
}

// ctxFor returns a context for one call, cancelled at the test's end.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startReq is a box running sh -c script.
func startReq(id, script string) messages.StartBox {
	return messages.StartBox{ID: id, Spec: messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{
		Executable: "/bin/sh",
		Args:       []string{"-c", script},
		Env:        []string{"PATH=/usr/bin:/bin"},
	}}}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitDeadline, pollInterval, what, cond)
}
