package control

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"go.uber.org/goleak"

	"github.com/boxsup/boxsup/actors"
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

// shimBinary is the reference shim, built once for the package into
// buildDir (mode 0755, so that another uid can run what is in it).
var shimBinary, buildDir string

// childDialEnv makes the test binary act as a control client (run as another
// uid by TestPeerWithAnotherUIDIsRefused): it dials the socket named by the
// variable's value and prints the error.
const childDialEnv = "BOXSUP_CONTROL_TEST_DIAL"

func TestMain(m *testing.M) {
	if path := os.Getenv(childDialEnv); path != "" {
		os.Exit(childDial(path))
	}
	if path := os.Getenv(childHangUpEnv); path != "" {
		os.Exit(childHangUp(path))
	}
	dir, err := os.MkdirTemp("", "boxsup-control-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// Other users must be able to execute the test binary's children
	// (the uid test): 0755 on the build directory.
	_ = os.Chmod(dir, 0o755)
	buildDir = dir
	shimBinary = filepath.Join(dir, "boxsup-shim")
	if err := testutil.Build(shimBinary, testutil.ShimPackage, false); err != nil {
		fmt.Fprintf(os.Stderr, "building the shim: %v\n", err)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	goleak.VerifyTestMain(testutil.Settling(m), goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// childDial is the body of the other-uid client.
func childDial(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		fmt.Println(err)
		if e := messages.AsError(err); e.Code == ErrPermissionDenied {
			return 3
		}
		return 1
	}
	fmt.Println("connected to pid", c.Server().PID)
	return 0
}

// testLogger logs at debug into a buffer shown only when the test fails.
func testLogger(t *testing.T) (*logrus.Logger, *testutil.SyncBuffer) {
	t.Helper()
	buf := &testutil.SyncBuffer{}
	log, err := logging.New(logging.Options{Level: "debug", Out: buf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return log, buf
}

// testConfig is a supervisor configuration on a fresh home.
func testConfig(t *testing.T) actors.Config {
	log, _ := testLogger(t)
	return actors.Config{Home: t.TempDir(), ShimBinary: shimBinary, Logger: log}
}

// newSupervisor opens a supervisor on a fresh home; Cleanup stops every box.
func newSupervisor(t *testing.T) *actors.Supervisor {
	t.Helper()
	sup, err := actors.NewSupervisor(context.Background(), testConfig(t))
	if err != nil {
		t.Fatalf("NewSupervisor: %v", err)
	}
	t.Cleanup(func() { shutdown(t, sup) })
	return sup
}

func shutdown(t *testing.T, sup *actors.Supervisor) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := sup.Shutdown(ctx, actors.StopAll); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
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

// serve starts a Server for sup on a socket in its home.
func serve(t *testing.T, sup *actors.Supervisor, opts ServerOptions) *Server {
	t.Helper()
	path := filepath.Join(sup.Home(), "boxsup.sock")
	srv, err := Listen(sup, path, opts)
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
