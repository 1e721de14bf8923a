package control

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// TestConnectOpensALocalThatServesOthers: with no server, Connect opens the
// home itself; with Serve, a second Connect meanwhile gets a Client to it.
func TestConnectOpensALocalThatServesOthers(t *testing.T) {
	cfg := testConfig(t)
	ctx := ctxFor(t)
	first, err := Connect(ctx, cfg.Home, ConnectOptions{Config: cfg, Serve: true})
	if err != nil {
		t.Fatalf("first Connect: %v", err)
	}
	local, ok := unwrap(first).(*Local)
	if !ok {
		t.Fatalf("first Connect: got %T, want *Local", unwrap(first))
	}
	defer func() {
		if err := first.Close(); err != nil {
			t.Errorf("Local.Close: %v", err)
		}
	}()
	second, err := Connect(ctx, cfg.Home, ConnectOptions{Config: cfg})
	if err != nil {
		t.Fatalf("second Connect: %v", err)
	}
	if _, ok := unwrap(second).(*Client); !ok {
		t.Fatalf("second Connect: got %T, want *Client", unwrap(second))
	}
	defer second.Close()
	if second.Home() != local.Home() {
		t.Fatalf("homes differ: client %s, local %s", second.Home(), local.Home())
	}
	// A foreground command's server refuses an attached box, which would
	// stop with that command; a detached one outlives it.
	if _, err := second.Start(ctx, startReq("attached", "exec sleep 60")); !errors.Is(err, messages.ErrBusy) {
		t.Fatalf("an attached Start through a temporary server: %v, want ErrBusy", err)
	}
	req := startReq("via-client", "exec sleep 60")
	req.Detach = true
	if _, err := second.Start(ctx, req); err != nil {
		t.Fatalf("Start through the client: %v", err)
	}
	st, err := local.Status(ctx, "via-client")
	if err != nil || st.State != messages.StateRunning {
		t.Fatalf("the local supervisor's view: %+v %v", st, err)
	}
	if _, err := second.Stop(ctx, "via-client", 0); err != nil {
		t.Fatal(err)
	}
}

// TestConnectWaitsForTheLockHolderToServe: a home locked by a supervisor
// that serves no socket yet is retried until it does; without one, the
// result is ErrHomeLocked after LockWait.
func TestConnectWaitsForTheLockHolderToServe(t *testing.T) {
	sup := newSupervisor(t)
	ctx := ctxFor(t)
	_, err := Connect(ctx, sup.Home(), ConnectOptions{LockWait: 100 * time.Millisecond})
	if !errors.Is(err, messages.ErrHomeLocked) {
		t.Fatalf("Connect to a locked home nobody serves: %v, want ErrHomeLocked", err)
	}

	type result struct {
		b   Backend
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Connect(ctx, sup.Home(), ConnectOptions{LockWait: waitDeadline})
		done <- result{b, err}
	}()
	home, err := layout.Open(sup.Home())
	if err != nil {
		t.Fatal(err)
	}
	sock, err := home.ControlSocketPath()
	if err != nil {
		t.Fatal(err)
	}
	serveAt(t, sup, sock)
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect while the holder starts serving: %v", r.err)
	}
	if _, ok := unwrap(r.b).(*Client); !ok {
		t.Fatalf("got %T, want *Client", unwrap(r.b))
	}
}

// TestLocalWaitReturnsWhenTheBoxComesToRest exercises Local.Wait through a
// restart: a box that fails once is restarted and Wait keeps waiting until
// it exits for good.
func TestLocalWaitReturnsWhenTheBoxComesToRest(t *testing.T) {
	sup := newSupervisor(t)
	ctx := ctxFor(t)
	marker := filepath.Join(t.TempDir(), "ran-once")
	req := startReq("flaky", "if [ -e "+marker+" ]; then exit 0; fi; touch "+marker+"; exit 5")
	req.Restart = messages.RestartPolicy{Mode: messages.RestartOnFailure, InitialBackoff: -1}
	l := NewLocal(sup)
	if _, err := l.Start(ctx, req); err != nil {
		t.Fatal(err)
	}
	st, err := l.Wait(ctx, "flaky")
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if st.State != messages.StateExited || st.Restarts != 1 || st.LastExit == nil || !st.LastExit.Success() {
		t.Fatalf("Wait: got state %s, restarts %d, exit %v; want exited cleanly after one restart", st.State, st.Restarts, st.LastExit)
	}
	// Closing the adapter ends pending waits without touching the supervisor.
	if _, err := l.Start(ctx, startReq("long", "exec sleep 60")); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := l.Wait(context.Background(), "long"); errc <- err }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, messages.ErrShuttingDown) {
		t.Fatalf("Wait after Close: %v, want ErrShuttingDown", err)
	}
	if _, err := sup.Status(ctx, "long"); err != nil {
		t.Fatalf("the supervisor should still be open after Local.Close: %v", err)
	}
}

// serveAt serves sup at path until the test ends.
func serveAt(t *testing.T, sup *actors.Supervisor, path string) {
	t.Helper()
	srv, err := Listen(sup, path, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
}
