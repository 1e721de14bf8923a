package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// readConsole returns what box id's console holds now (the box at rest:
// all of it), or the read's error.
func readConsole(t *testing.T, home, id string) (string, error) {
	t.Helper()
	box, err := (&layout.Home{Root: home}).Box(id)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = boxlog.Copy(ctxFor(t), &out, box.ConsoleLogPath(), boxlog.Options{})
	return out.String(), err
}

// TestRunWithRemoveWaitsForTheRelease: the order that lost the console of
// `run --rm` through a supervise (the box exits and the server is ready to
// remove it before the client has opened its log) is forced, and the
// client still reads the whole console: the server removes the box only
// once the client has released it, and the answer says how the box ended.
func TestRunWithRemoveWaitsForTheRelease(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	awaiting := make(chan string, 1)
	srv := serve(t, sup, ServerOptions{awaitingRelease: func(id string) { awaiting <- id }})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}

	var calls []string
	var console string
	st, err := c.Run(ctx, startReq("rm-me", "echo hi; exit 3"), true, RunHooks{
		Started: func(st messages.BoxStatus) { calls = append(calls, "started "+string(st.State)) },
		Ended: func(st messages.BoxStatus) {
			calls = append(calls, "ended "+string(st.State))
			// The server is at the removal, waiting for this hook to
			// return; the log is opened only now.
			select {
			case id := <-awaiting:
				if id != "rm-me" {
					t.Errorf("the server awaits the release of %q, want rm-me", id)
				}
			case <-ctx.Done():
				t.Errorf("the server never waited for the release: %v", ctx.Err())
			}
			if now, err := sup.Status(ctx, "rm-me"); err != nil || now.State != messages.StateExited {
				t.Errorf("the box while its client reads it: %+v %v; want it exited, not removed", now, err)
			}
			var err error
			if console, err = readConsole(t, sup.Home(), "rm-me"); err != nil {
				t.Errorf("reading the console at the end of the run: %v", err)
			}
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st.LastExit == nil || st.LastExit.ShellCode() != 3 || st.State != messages.StateExited {
		t.Errorf("Run: %+v; want exited with code 3", st)
	}
	if console != "hi\n" {
		t.Errorf("console read in Ended: %q, want %q", console, "hi\n")
	}
	if want := []string{"started running", "ended exited"}; len(calls) != 2 || calls[0] != want[0] || calls[1] != want[1] {
		t.Errorf("hooks called: %q, want %q", calls, want)
	}
	if _, err := sup.Status(ctx, "rm-me"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("the box after Run returned: %v; want it removed", err)
	}
}

// runConn is a raw run request on the control socket, as any client of
// the documented protocol sends it.
type runConn struct {
	t    *testing.T
	conn *net.UnixConn
	rd   *bufio.Reader
}

func sendRun(t *testing.T, path string, req Request) *runConn {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		t.Fatal(err)
	}
	return &runConn{t: t, conn: conn, rd: bufio.NewReader(conn)}
}

// next reads the next line.
func (r *runConn) next() Response {
	r.t.Helper()
	line, err := r.rd.ReadBytes('\n')
	if err != nil {
		r.t.Fatalf("reading a line of the run: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		r.t.Fatalf("line %q: %v", line, err)
	}
	return resp
}

// TestRunReleaseOnTheWire: a run with remove and release sends Started,
// then Ended with the final status while the box still exists, and after
// the client's half-close removes the box and answers.
func TestRunReleaseOnTheWire(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	req := startReq("wire", "echo hi")
	r := sendRun(t, srv.Path(), Request{Op: OpRun, ID: req.ID, Start: &req, Remove: true, Release: true})
	if resp := r.next(); !resp.Started || resp.Status == nil || resp.Error != nil {
		t.Fatalf("first line: %+v; want Started", resp)
	}
	ended := r.next()
	if !ended.Ended || ended.Status == nil || ended.Status.LastExit == nil || ended.Status.LastExit.ShellCode() != 0 {
		t.Fatalf("second line: %+v; want Ended with exit 0", ended)
	}
	if out, err := readConsole(t, sup.Home(), "wire"); err != nil || out != "hi\n" {
		t.Fatalf("console before the release: %q %v", out, err)
	}
	if err := r.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	answer := r.next()
	if answer.Ended || answer.Started || answer.Error != nil || answer.Status == nil || answer.Status.State != messages.StateExited {
		t.Fatalf("answer after the release: %+v; want the final status, no error", answer)
	}
	if _, err := sup.Status(ctx, "wire"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("the box once answered: %v; want it removed", err)
	}
}

// TestRunOfAnOlderClientIsRemovedAtOnce: a client of protocol 3 (remove
// without release) gets what it always got: no Ended line, and the box
// removed by the time the answer comes.
func TestRunOfAnOlderClientIsRemovedAtOnce(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	req := startReq("old", "exit 0")
	r := sendRun(t, srv.Path(), Request{Op: OpRun, ID: req.ID, Start: &req, Remove: true})
	if resp := r.next(); !resp.Started {
		t.Fatalf("first line: %+v; want Started", resp)
	}
	answer := r.next()
	if answer.Ended || answer.Error != nil || answer.Status == nil || answer.Status.State != messages.StateExited {
		t.Fatalf("second line: %+v; want the answer with the final status", answer)
	}
	if _, err := sup.Status(ctx, "old"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("the box once answered: %v; want it removed", err)
	}
}

// TestRunIsRemovedWhenItsClientVanishes: --rm holds whatever becomes of the
// client: one that hangs up at the end of the run without releasing, or in
// the middle of it, leaves no box (the latter is stopped first).
func TestRunIsRemovedWhenItsClientVanishes(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	gone := func(id string) bool {
		_, err := sup.Status(ctx, id)
		return errors.Is(err, messages.ErrNotFound)
	}

	req := startReq("at-end", "exit 0")
	r := sendRun(t, srv.Path(), Request{Op: OpRun, ID: req.ID, Start: &req, Remove: true, Release: true})
	_ = r.next() // Started
	if resp := r.next(); !resp.Ended {
		t.Fatalf("second line: %+v; want Ended", resp)
	}
	_ = r.conn.Close()
	eventually(t, "the box of a client gone at the end of its run to be removed", func() bool { return gone("at-end") })

	req = startReq("midway", "exec sleep 60")
	r = sendRun(t, srv.Path(), Request{Op: OpRun, ID: req.ID, Start: &req, Remove: true, Release: true})
	if resp := r.next(); !resp.Started {
		t.Fatalf("first line: %+v; want Started", resp)
	}
	_ = r.conn.Close()
	eventually(t, "the box of a client gone in the middle of its run to be stopped and removed", func() bool { return gone("midway") })
}

// TestClosingServerRemovesARunAwaitingRelease: a server that closes while
// a run's client is still reading removes the box all the same (--rm), and
// still answers.
func TestClosingServerRemovesARunAwaitingRelease(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv, err := Listen(sup, filepath.Join(sup.Home(), "boxsup.sock"), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Run(ctx, startReq("closing", "exit 0"), true, RunHooks{Ended: func(messages.BoxStatus) {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}})
	if err != nil || st.State != messages.StateExited {
		t.Fatalf("Run: %+v %v; want exited, no error", st, err)
	}
	if _, err := sup.Status(ctx, "closing"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("the box after the server closed: %v; want it removed", err)
	}
}

// TestRunRemoveIsRefusedByAnOlderServer: a server of protocol 3 would
// remove the box before the caller read its console: a run with remove is
// refused before anything starts. Without remove it runs, and Ended comes
// with the answer.
func TestRunRemoveIsRefusedByAnOlderServer(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	srv := serve(t, sup, ServerOptions{})
	ctx := ctxFor(t)
	c, err := Dial(ctx, srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	c.info.Protocol = 3

	_, err = c.Run(ctx, startReq("refused", "exit 0"), true, RunHooks{})
	if !errors.Is(err, messages.ErrUnsupported) {
		t.Fatalf("Run with remove against protocol 3: %v; want ErrUnsupported", err)
	}
	if _, err := sup.Status(ctx, "refused"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("the refused box: %v; want it never created", err)
	}

	var ended *messages.BoxStatus
	st, err := c.Run(ctx, startReq("kept", "exit 5"), false, RunHooks{Ended: func(st messages.BoxStatus) { ended = &st }})
	if err != nil || st.LastExit == nil || st.LastExit.ShellCode() != 5 {
		t.Fatalf("Run without remove: %+v %v; want exit 5", st, err)
	}
	if ended == nil || ended.State != messages.StateExited {
		t.Fatalf("Ended without remove: %+v; want the final status", ended)
	}
}

// TestLocalRunCallsEndedBeforeRemoving: in-process, the console is there
// for Ended to read, and gone once Run returns; a box that fails to start
// calls neither hook and is removed too.
func TestLocalRunCallsEndedBeforeRemoving(t *testing.T) {
	t.Parallel()
	sup := newSupervisor(t)
	l := NewLocal(sup)
	ctx := ctxFor(t)
	var console string
	var readErr error
	st, err := l.Run(ctx, startReq("local", "echo hi"), true, RunHooks{Ended: func(messages.BoxStatus) {
		console, readErr = readConsole(t, sup.Home(), "local")
	}})
	if err != nil || st.State != messages.StateExited {
		t.Fatalf("Run: %+v %v", st, err)
	}
	if console != "hi\n" || readErr != nil {
		t.Fatalf("console read in Ended: %q %v; want %q", console, readErr, "hi\n")
	}
	if _, err := sup.Status(ctx, "local"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("the box after Run: %v; want it removed", err)
	}

	bad := startReq("bad", "")
	bad.Spec.GuestEntrypoint.Executable = "/nonexistent/program"
	hooked := false
	_, err = l.Run(ctx, bad, true, RunHooks{
		Started: func(messages.BoxStatus) { hooked = true },
		Ended:   func(messages.BoxStatus) { hooked = true },
	})
	if err == nil || hooked {
		t.Fatalf("Run of a missing program: %v, hooks called %v; want an error and no hook", err, hooked)
	}
	if _, err := sup.Status(ctx, "bad"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("the box that failed to start: %v; want it removed", err)
	}
}
