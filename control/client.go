package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// maxResponseBytes bounds one reply: a list or metrics sample of many
// thousands of boxes fits.
const maxResponseBytes = 64 << 20

// Request deadlines. A server that accepted the connection but does not
// answer (a supervisor stopped with SIGSTOP, or wedged) must give a clear
// error, not hang the command for ever: the kernel accepts connections on
// a listening socket whether or not its process runs.
const (
	// DefaultRequestTimeout bounds a query (ping, status, list, metrics,
	// signal) and the connection itself.
	DefaultRequestTimeout = 5 * time.Second
	// requestMargin is added to an operation's own bound (a stop's timeout,
	// a start's ready timeout): the supervisor enforces that bound itself,
	// so its reply is late only when something is wrong.
	requestMargin = 10 * time.Second
	// livenessInterval paces the pings that watch a server during a request
	// without a deadline (wait): two in a row unanswered within
	// DefaultRequestTimeout end the request.
	livenessInterval = 5 * time.Second
)

// Client is the Backend over a supervisor in another process, reached
// through its control socket. Each call uses a connection of its own, so a
// Client is safe for concurrent use and holds nothing between calls.
//
// Before sending anything on a connection, the Client checks who listens
// (SO_PEERCRED): the server must run as this process's effective uid or as
// root, like the home it serves; anyone else is refused with
// messages.ErrUnsafeHome and learns nothing (a start request carries the
// box's secrets). Every request has a deadline: DefaultRequestTimeout for
// queries, the operation's own bound plus a margin for stop, kill, start
// and remove; a wait has none, but the server's liveness is checked with
// pings meanwhile, and a dead or frozen server ends it with an error.
type Client struct {
	path string
	info ServerInfo
	// specOf, when set, reads a box's stored spec: it gives the stop and
	// ready timeouts of requests that do not carry them.
	specOf func(id string) (messages.StartBox, error)
}

// Dial checks that a server answers on the socket at path (a ping) and
// returns a Client for it. A socket nobody listens on gives an error
// satisfying errors.Is(err, syscall.ECONNREFUSED), a missing one
// fs.ErrNotExist; a server that refuses this process's uid gives
// ErrPermissionDenied; a server running as another user (neither this
// process's effective uid nor root) gives messages.ErrUnsafeHome; a server
// that does not answer within DefaultRequestTimeout gives
// messages.ErrTimeout.
func Dial(ctx context.Context, path string) (*Client, error) {
	c := &Client{path: path}
	resp, err := c.do(ctx, &Request{Op: OpPing})
	if err != nil {
		return nil, err
	}
	if resp.Server == nil {
		return nil, messages.Errorf(messages.ErrInternal, "control socket %s: the ping reply carries no server info", path)
	}
	c.info = *resp.Server
	return c, nil
}

// Server returns what the server said about itself when dialled.
func (c *Client) Server() ServerInfo { return c.info }

// Path returns the control socket's path.
func (c *Client) Path() string { return c.path }

// deadline returns how long req may take, or 0 for no deadline (the long
// operations: wait, run, events): the table's bound, or the operation's own
// bound plus a margin.
func (c *Client) deadline(req *Request) time.Duration {
	switch req.Op {
	case OpStop:
		return c.stopBound(req.ID, req.Timeout) + requestMargin
	case OpKill:
		return DefaultRequestTimeout + requestMargin
	case OpRemove:
		if req.Force {
			return c.stopBound(req.ID, 0) + requestMargin
		}
		return DefaultRequestTimeout + requestMargin
	case OpStart:
		ready := messages.DefaultReadyTimeout
		if req.Start != nil && req.Start.ReadyTimeout > 0 {
			ready = req.Start.ReadyTimeout
		}
		return ready + requestMargin
	case OpStartAgain:
		ready := messages.DefaultReadyTimeout
		if sb, ok := c.storedSpec(req.ID); ok && sb.ReadyTimeout > 0 {
			ready = sb.ReadyTimeout
		}
		return ready + requestMargin
	}
	if o, ok := operationFor(req.Op); ok && !o.long {
		return o.bound
	}
	return 0
}

// stopBound is how long the supervisor may take to stop box id: timeout,
// else the box's own stop timeout when its spec can be read, else the
// default.
func (c *Client) stopBound(id string, timeout time.Duration) time.Duration {
	if timeout > 0 {
		return timeout
	}
	if sb, ok := c.storedSpec(id); ok && sb.StopTimeout > 0 {
		return sb.StopTimeout
	}
	return messages.DefaultStopTimeout
}

func (c *Client) storedSpec(id string) (messages.StartBox, bool) {
	if c.specOf == nil {
		return messages.StartBox{}, false
	}
	sb, err := c.specOf(id)
	return sb, err == nil
}

// do sends one request on a new connection and reads the reply, within the
// request's deadline. Cancelling ctx abandons the connection; the server
// then cancels the request.
func (c *Client) do(ctx context.Context, req *Request) (Response, error) {
	return c.stream(ctx, req, nil)
}

// stream is do for the operations that answer with several lines: lines
// gets each extra one (run's Started and Ended, every event) before the
// answer. Once lines has handled a run's Ended line, stream releases the
// box: it half-closes the connection, and the server removes the box (if
// asked) and answers.
func (c *Client) stream(ctx context.Context, req *Request, lines func(Response)) (Response, error) {
	limit := c.deadline(req)
	dialCtx, cancelDial := context.WithTimeout(ctx, DefaultRequestTimeout)
	var d net.Dialer
	conn, err := d.DialContext(dialCtx, "unix", c.path)
	cancelDial()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return Response{}, messages.Errorf(messages.ErrTimeout,
				"control socket %s: could not connect within %v", c.path, DefaultRequestTimeout)
		}
		return Response{}, fmt.Errorf("control socket %s: %w", c.path, err)
	}
	uc := conn.(*net.UnixConn)
	defer conn.Close()
	cred, err := c.checkServer(uc)
	if err != nil {
		return Response{}, err
	}

	// The request's own bound, the caller's context and (without a bound)
	// the server's liveness all end the call the same way: a deadline in
	// the past unblocks the I/O, and why is told afterwards.
	var why atomic.Pointer[error]
	abort := func(err error) {
		why.CompareAndSwap(nil, &err)
		_ = conn.SetDeadline(time.Unix(1, 0))
	}
	stop := context.AfterFunc(ctx, func() { abort(ctx.Err()) })
	defer stop()
	if limit > 0 {
		t := time.AfterFunc(limit, func() {
			abort(messages.Errorf(messages.ErrTimeout,
				"control socket %s: the supervisor (pid %d) did not answer %s within %v; it may be stopped (SIGSTOP) or overloaded",
				c.path, cred.Pid, req.Op, limit))
		})
		defer t.Stop()
	} else {
		watchCtx, cancelWatch := context.WithCancel(ctx)
		defer cancelWatch()
		go c.watchLiveness(watchCtx, cred.Pid, abort)
	}

	writeErr := json.NewEncoder(conn).Encode(req)
	// Read even when the write failed: a server that refused the
	// connection may have answered (and closed) before reading.
	dec := json.NewDecoder(io.LimitReader(conn, maxResponseBytes))
	var resp Response
	var readErr error
	for {
		resp = Response{}
		if readErr = dec.Decode(&resp); readErr != nil {
			break
		}
		if resp.Started || resp.Ended || resp.Event != nil {
			if lines != nil {
				lines(resp) // an extra line: run's Started or Ended, an event
			}
			if resp.Ended {
				// The release: nothing more is sent on a run's
				// connection, so a half-close says it unambiguously.
				// It fails only on a broken connection, which the
				// server takes as the release too; the read below
				// says what became of it.
				_ = uc.CloseWrite()
			}
			continue
		}
		if resp.NotServed {
			return resp, &notServedError{msg: resp.Error}
		}
		return resp, messages.Err(resp.Error)
	}
	if w := why.Load(); w != nil {
		return Response{}, *w
	}
	switch {
	case writeErr != nil:
		return Response{}, fmt.Errorf("control socket %s: sending the request: %w", c.path, writeErr)
	case errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) || errors.Is(readErr, syscall.ECONNRESET):
		gone := ""
		if serverExited(int(cred.Pid)) {
			// Killed (or crashed) rather than shut down: say what the
			// caller cannot know.
			gone = "; it has exited, so whether the request took effect is unknown (see boxsup ps)"
		}
		return Response{}, messages.Errorf(messages.ErrShuttingDown,
			"control socket %s: the server (pid %d) %w%s", c.path, cred.Pid, errHungUp, gone)
	}
	return Response{}, fmt.Errorf("control socket %s: reading the reply: %w", c.path, readErr)
}

// exitWait bounds how long a hung-up client waits to learn whether the
// server is exiting: a server that dies closes its connections in its exit,
// just before the kernel reports the exit.
const exitWait = 200 * time.Millisecond

// serverExited reports whether process pid (the server, by the socket's
// credentials) has exited or exits within exitWait, through a pidfd.
func serverExited(pid int) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return true // exited and reaped already
	}
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(exitWait/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n == 1
	}
}

// errHungUp is the cause of a request whose server closed the connection
// without a reply (resendable tells queries that may be sent again by it).
var errHungUp = errors.New("closed the connection before replying")

// checkServer reads the listening process's credentials from the kernel
// and refuses a server that runs as another user: it could be anyone's
// listener planted on the socket path, and must receive nothing.
func (c *Client) checkServer(conn *net.UnixConn) (*unix.Ucred, error) {
	cred, err := peerCred(conn)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: reading the server's credentials: %w", c.path, err)
	}
	if !peerAllowed(cred.Uid) {
		return nil, messages.Errorf(messages.ErrUnsafeHome,
			"control socket %s is served by uid %d (pid %d), not by uid %d or root; nothing was sent to it. Fix: find out who planted it, remove the socket, and check the home's and the socket directory's owners",
			c.path, cred.Uid, cred.Pid, os.Geteuid())
	}
	return cred, nil
}

// watchLiveness pings the server every livenessInterval while a request
// without a deadline is in flight, and aborts it when two pings in a row
// fail: the server died or is frozen.
func (c *Client) watchLiveness(ctx context.Context, pid int32, abort func(error)) {
	t := time.NewTicker(livenessInterval)
	defer t.Stop()
	failed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := c.do(ctx, &Request{Op: OpPing})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failed = 0
			continue
		}
		if failed++; failed >= 2 {
			abort(messages.Errorf(messages.ErrTimeout,
				"control socket %s: the supervisor (pid %d) stopped answering (%v)", c.path, pid, err))
			return
		}
	}
}

// statusCall runs a request whose reply is a BoxStatus.
func (c *Client) statusCall(ctx context.Context, req *Request) (messages.BoxStatus, error) {
	resp, err := c.do(ctx, req)
	st := messages.BoxStatus{ID: req.ID}
	if resp.Status != nil {
		st = *resp.Status
	}
	return st, err
}

// Start implements Backend.
func (c *Client) Start(ctx context.Context, req messages.StartBox) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStart, ID: req.ID, Start: &req})
}

// Stop implements Backend.
func (c *Client) Stop(ctx context.Context, id string, timeout time.Duration) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStop, ID: id, Timeout: timeout})
}

// StartExisting implements Backend.
func (c *Client) StartExisting(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStartAgain, ID: id})
}

// Kill implements Backend.
func (c *Client) Kill(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpKill, ID: id})
}

// Signal implements Backend.
func (c *Client) Signal(ctx context.Context, id, signal string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpSignal, ID: id, Signal: signal})
}

// Remove implements Backend.
func (c *Client) Remove(ctx context.Context, id string, force bool) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpRemove, ID: id, Force: force})
}

// Status implements Backend.
func (c *Client) Status(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpStatus, ID: id})
}

// Wait implements Backend. The connection stays open until the box is at
// rest; cancelling ctx hangs up and the server stops waiting.
func (c *Client) Wait(ctx context.Context, id string) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpWait, ID: id})
}

// Inspect implements Backend.
func (c *Client) Inspect(ctx context.Context, id string) (messages.BoxInspect, error) {
	if c.info.Protocol < 3 {
		return messages.BoxInspect{ID: id}, c.tooOld("inspect")
	}
	resp, err := c.do(ctx, &Request{Op: OpInspect, ID: id})
	if resp.Inspect == nil {
		return messages.BoxInspect{ID: id}, err
	}
	return *resp.Inspect, err
}

// tooOld refuses what the server's protocol predates.
func (c *Client) tooOld(what string) error {
	return messages.Errorf(messages.ErrUnsupported, "%s: the supervisor serving %s (pid %d) speaks control protocol %d, older than this boxsup's %d; restart `boxsup supervise` with this version",
		what, c.path, c.info.PID, c.info.Protocol, ProtocolVersion)
}

// List implements Backend.
func (c *Client) List(ctx context.Context, sel Selection) ([]messages.BoxStatus, error) {
	resp, err := c.do(ctx, &Request{Op: OpList, Select: &sel})
	return resp.Boxes, err
}

// Adopt implements Backend.
func (c *Client) Adopt(ctx context.Context, id string, pid int) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpAdopt, ID: id, PID: pid})
}

// Update implements Backend.
func (c *Client) Update(ctx context.Context, u messages.UpdateBox) (messages.BoxStatus, error) {
	return c.statusCall(ctx, &Request{Op: OpUpdate, ID: u.ID, Update: &u})
}

// Run implements Backend. The connection stays open for the life of the
// box: when it breaks (this process dies, or ctx ends and it hangs up) the
// server stops the box, and removes it when remove is set. With remove,
// the server removes the box only once hooks.Ended returned (the client
// then releases it) or the connection broke; a server older than protocol
// 4 cannot wait for that, and is refused with messages.ErrUnsupported
// before anything is started, rather than have it remove the console
// before the caller read it.
func (c *Client) Run(ctx context.Context, req messages.StartBox, remove bool, hooks RunHooks) (messages.BoxStatus, error) {
	if remove && c.info.Protocol < 4 {
		return messages.BoxStatus{ID: req.ID}, c.tooOld("run --rm")
	}
	started, ended := false, false
	end := func(st messages.BoxStatus) {
		if started && !ended {
			ended = true
			if hooks.Ended != nil {
				hooks.Ended(st)
			}
		}
	}
	resp, err := c.stream(ctx, &Request{Op: OpRun, ID: req.ID, Start: &req, Remove: remove, Release: remove}, func(r Response) {
		switch {
		case r.Status == nil:
		case r.Started:
			started = true
			if hooks.Started != nil {
				hooks.Started(*r.Status)
			}
		case r.Ended:
			end(*r.Status)
		}
	})
	st := messages.BoxStatus{ID: req.ID}
	if resp.Status != nil {
		st = *resp.Status
		end(st) // without Release, the answer is the end
	}
	return st, err
}

// Events implements Backend: one connection carries the events until ctx
// ends (Events then returns ctx's error) or the server goes away.
func (c *Client) Events(ctx context.Context, sel Selection, fn func(messages.Event)) error {
	if (!sel.Since.IsZero() || !sel.Until.IsZero()) && c.info.Protocol < 3 {
		return c.tooOld("events since or until")
	}
	var decodeErr error
	_, err := c.stream(ctx, &Request{Op: OpEvents, Select: &sel}, func(r Response) {
		if r.Event == nil {
			return
		}
		ev, err := decodeEvent(r.Event)
		switch {
		case err != nil:
			decodeErr = err
		case ev != nil:
			fn(ev)
		}
	})
	if err == nil {
		err = decodeErr
	}
	return err
}

// Metrics implements Backend.
func (c *Client) Metrics(ctx context.Context, id string) (messages.BoxMetrics, error) {
	resp, err := c.do(ctx, &Request{Op: OpMetrics, ID: id})
	if resp.Metrics == nil {
		return messages.BoxMetrics{ID: id}, err
	}
	return *resp.Metrics, err
}

// MetricsAll implements Backend.
func (c *Client) MetricsAll(ctx context.Context) ([]messages.BoxMetrics, error) {
	resp, err := c.do(ctx, &Request{Op: OpMetricsAll})
	return resp.AllMetrics, err
}

// Home implements Backend: the server's home.
func (c *Client) Home() string { return c.info.Home }

// Close implements Backend; a Client holds nothing between calls.
func (c *Client) Close() error { return nil }

// notServedError: the server was closing and did not look at the request,
// which may be sent again as it is to whoever serves the home next.
type notServedError struct{ msg *messages.Error }

func (e *notServedError) Error() string { return e.msg.Error() }
func (e *notServedError) Unwrap() error { return e.msg }
