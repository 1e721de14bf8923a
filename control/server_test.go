package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// TestClientDrivesABoxThroughTheSocket runs a box's whole life through a
// Client and checks every reply against the supervisor's own view.
func TestClientDrivesABoxThroughTheSocket(t *testing.T) {
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)

	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if got := c.Server(); got.PID != os.Getpid() || got.Home != sup.Home() || got.Protocol != ProtocolVersion {
		t.Fatalf("ping: got %+v, want pid %d, home %s", got, os.Getpid(), sup.Home())
	}
	fi, err := os.Stat(srv.Path())
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("socket mode: %v %v, want a 0600 socket", fi.Mode(), err)
	}

	hupFile := filepath.Join(t.TempDir(), "hup")
	st, err := c.Start(ctx, startReq("web", `trap 'echo hup >> `+hupFile+`' HUP; echo trapped; while :; do sleep 0.05; done`))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if st.State != messages.StateRunning || st.PID <= 0 {
		t.Fatalf("Start: got %+v, want running with a pid", st)
	}
	local, err := sup.Status(ctx, "web")
	if err != nil || local.PID != st.PID {
		t.Fatalf("supervisor's own status: %+v %v, want pid %d", local, err, st.PID)
	}
	if st2, err := c.Status(ctx, "web"); err != nil || st2.PID != st.PID || st2.State != messages.StateRunning {
		t.Fatalf("Status: %+v %v", st2, err)
	}
	list, err := c.List(ctx, Selection{})
	if err != nil || len(list) != 1 || list[0].ID != "web" {
		t.Fatalf("List: %+v %v", list, err)
	}
	m, err := c.Metrics(ctx, "web")
	if err != nil || m.ID != "web" || m.PID != st.PID || m.Processes < 2 || m.MemoryBytes == 0 {
		t.Fatalf("Metrics: %+v %v", m, err)
	}
	all, err := c.MetricsAll(ctx)
	if err != nil || len(all) != 1 || all[0].ID != "web" {
		t.Fatalf("MetricsAll: %+v %v", all, err)
	}
	// A SIGHUP that came before the trap would end the guest: wait for the
	// line it prints once the trap is installed.
	eventually(t, "the guest's trap to be installed", func() bool { return consoleHas(ctx, sup, "web", "trapped\n") })
	if _, err := c.Signal(ctx, "web", "HUP"); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	eventually(t, "the guest's HUP trap to run", func() bool {
		b, _ := os.ReadFile(hupFile)
		return string(b) == "hup\n"
	})
	if _, err := c.Remove(ctx, "web", false); !errors.Is(err, messages.ErrBusy) {
		t.Fatalf("Remove of a running box: %v, want ErrBusy", err)
	}
	stopped, err := c.Stop(ctx, "web", 5*time.Second)
	if err != nil || stopped.State != messages.StateExited || stopped.LastExit == nil {
		t.Fatalf("Stop: %+v %v", stopped, err)
	}
	if w, err := c.Wait(ctx, "web"); err != nil || w.State != messages.StateExited {
		t.Fatalf("Wait on a stopped box: %+v %v", w, err)
	}
	if _, err := c.Remove(ctx, "web", false); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := c.Status(ctx, "web"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("Status after Remove: %v, want ErrNotFound", err)
	}
}

// TestErrorsKeepTheirCodeAcrossTheSocket checks errors.Is on the client side.
func TestErrorsKeepTheirCodeAcrossTheSocket(t *testing.T) {
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func() error
		want messages.ErrorCode
	}{
		{"stop unknown", func() error { _, err := c.Stop(ctx, "nope", 0); return err }, messages.ErrNotFound},
		{"status invalid", func() error { _, err := c.Status(ctx, "../x"); return err }, messages.ErrInvalidID},
		{"metrics unknown", func() error { _, err := c.Metrics(ctx, "nope"); return err }, messages.ErrNotFound},
		{"wait unknown", func() error { _, err := c.Wait(ctx, "nope"); return err }, messages.ErrNotFound},
		{"bad spec", func() error { _, err := c.Start(ctx, messages.StartBox{ID: "x"}); return err }, messages.ErrBadSpec},
		{"unknown op", func() error { _, err := c.do(ctx, &Request{Op: "frobnicate"}); return err }, messages.ErrBadSpec},
	}
	for _, tc := range cases {
		err := tc.call()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want code %s", tc.name, err, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(sup.Home(), "boxes", "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused start left a box directory behind: %v", err)
	}
}

// TestUnknownRequestFieldsAreRefused: a field the server does not know is
// refused with its name, never dropped: a spec asking for a user the
// server cannot read must not run as root.
func TestUnknownRequestFieldsAreRefused(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	for _, line := range []string{
		`{"op":"start","start":{"id":"u1","detach":true,"spec":{"guest_entrypoint":{"executable":"/bin/sleep","args":["100"]},"security":{"user":"nobody"}}}}`,
		`{"op":"start","start":{"id":"u1","detach":true,"memory_limit":"64m","spec":{"guest_entrypoint":{"executable":"/bin/sleep","args":["100"]}}}}`,
		`{"op":"start","frobnicate":1,"start":{"id":"u1","spec":{"guest_entrypoint":{"executable":"/bin/sleep"}}}}`,
	} {
		resp := rawRequest(t, srv.Path(), line)
		if !errors.Is(messages.Err(resp.Error), messages.ErrBadSpec) || !strings.Contains(resp.Error.Error(), "unknown field") {
			t.Errorf("%s: got %+v; want ErrBadSpec naming the unknown field", line, resp.Error)
		}
	}
	if _, err := os.Stat(filepath.Join(sup.Home(), "boxes", "u1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused start left a box directory behind: %v", err)
	}
}

// rawRequest sends one request line on the socket and decodes the reply.
func rawRequest(t *testing.T, path, line string) Response {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		t.Fatalf("reading the reply to %s: %v", line, err)
	}
	return resp
}

// TestWaitFollowsABoxUntilItExits waits through the socket for a box that
// exits by itself with code 3.
func TestWaitFollowsABoxUntilItExits(t *testing.T) {
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, startReq("short", "sleep 0.3; exit 3")); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx, "short")
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if st.State != messages.StateExited || st.LastExit == nil || st.LastExit.ShellCode() != 3 {
		t.Fatalf("Wait: got %+v (exit %v), want exited with code 3", st, st.LastExit)
	}
}

// TestClosingTheServerEndsPendingWaits: a client waiting on a box that never
// exits gets an error when the server closes, and Close does not hang.
func TestClosingTheServerEndsPendingWaits(t *testing.T) {
	sup := newSupervisor(t)
	srv, err := Listen(sup, filepath.Join(sup.Home(), "boxsup.sock"), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, startReq("long", "exec sleep 60")); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Wait(ctx, "long")
		errc <- err
	}()
	eventually(t, "the wait request in flight on the server", func() bool { return srv.active.Load() == 1 })
	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Wait returned nil although the box is still running")
		}
	case <-time.After(waitDeadline):
		t.Fatal("Wait did not return after the server closed")
	}
	if _, err := os.Lstat(srv.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket still present after Close: %v", err)
	}
}

// TestCancelledClientStopsTheServerSideWait: a client that hangs up ends its
// request on the server (the handler does not linger until the box exits).
func TestCancelledClientStopsTheServerSideWait(t *testing.T) {
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, startReq("long", "exec sleep 60")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(wctx, "long"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with an expiring context: %v, want DeadlineExceeded", err)
	}
	// Close waits for every handler; it would block until the box exits
	// (never) if the hang-up had not ended the server-side wait.
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitDeadline):
		t.Fatal("Server.Close blocked: the abandoned wait is still running")
	}
}

// TestStaleSocketIsReplacedButALiveOneIsNot covers Listen's handling of what
// is already at the path.
func TestStaleSocketIsReplacedButALiveOneIsNot(t *testing.T) {
	sup := newSupervisor(t)
	path := filepath.Join(sup.Home(), "boxsup.sock")

	// A stale socket: bound, then closed without unlinking (a dead server).
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	srv, err := Listen(sup, path, ServerOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	// A live one: the server just started.
	if _, err := Listen(sup, path, ServerOptions{}); !errors.Is(err, messages.ErrBusy) {
		t.Fatalf("Listen over a live socket: %v, want ErrBusy", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Not a socket: refused and left alone.
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(sup, path, ServerOptions{}); !errors.Is(err, messages.ErrNotSocket) {
		t.Fatalf("Listen over a regular file: %v, want ErrNotSocket", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Fatalf("the regular file was touched: %q %v", b, err)
	}
}

// TestPeerWithAnotherUIDIsRefused runs a client as nobody. With the socket's
// own 0600 mode the kernel refuses the connection; with the mode loosened
// (as a careless operator might) the server's SO_PEERCRED check refuses it.
func TestPeerWithAnotherUIDIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	// Let nobody reach the socket's directory.
	for dir := sup.Home(); dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(dir) == os.TempDir() {
			break
		}
	}
	exe := copyTestBinary(t)
	runAsNobody := func() (string, int) {
		cmd := exec.Command(exe)
		cmd.Env = []string{childDialEnv + "=" + srv.Path()}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("running the client as nobody: %v", err)
		}
		return strings.TrimSpace(string(out)), code
	}

	out, code := runAsNobody()
	if code == 0 || !strings.Contains(out, "permission denied") {
		t.Fatalf("nobody on a 0600 socket: exit %d, %q; want a refusal", code, out)
	}
	if err := os.Chmod(srv.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	out, code = runAsNobody()
	if code != 3 || !strings.Contains(out, "uid 65534 may not use the control socket") {
		t.Fatalf("nobody on a 0666 socket: exit %d, %q; want the server's SO_PEERCRED refusal", code, out)
	}
}

// copyTestBinary copies the running test binary where another uid may
// execute it (go test builds it in a private directory).
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(buildDir, "control.test")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(exe) })
	return exe
}

// consoleHas reports whether box id's console (read through boxlog, without
// its record framing) holds want.
func consoleHas(ctx context.Context, sup *actors.Supervisor, id, want string) bool {
	r, err := sup.Logs(ctx, id, actors.LogOptions{})
	if err != nil {
		return false
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return err == nil && strings.Contains(string(b), want)
}
