package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/logging"
	"github.com/boxsup/boxsup/messages"
)

// Bounds on one connection's I/O. Handling the request itself is bounded by
// the operation (a start waits for readiness, a wait for the box to stop),
// not by these.
const (
	requestReadTimeout = 10 * time.Second
	replyWriteTimeout  = 10 * time.Second
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// Logger receives connection and request logs (debug) and refusals
	// (warn). Nil means the supervisor's logger.
	Logger logrus.FieldLogger
	// OnStop, when set, is called after each successful stop served, with
	// how long it took (the Exporter's ObserveStop).
	OnStop func(id string, took time.Duration)
	// Temporary marks a server run by a command that holds the home only
	// for a while (a foreground boxsup run): it refuses attached starts
	// and runs, whose boxes would die with it, and says so in its ping so
	// that such clients queue for the home instead.
	Temporary bool

	// awaitingRelease, when set (tests), is called once a run has sent its
	// Ended line and waits for its client's release.
	awaitingRelease func(id string)
}

// Server serves the control API of one Supervisor on a Unix socket. Create
// it with Listen; it serves until Close.
type Server struct {
	backend *Local
	ln      *net.UnixListener
	path    string
	opts    ServerOptions
	log     logrus.FieldLogger

	// ctx ends the long requests (wait, run, events) when the server closes;
	// the others are let finish.
	ctx     context.Context
	cancel  context.CancelFunc
	closing atomic.Bool // a request read from now on is answered NotServed
	wg      sync.WaitGroup
	active  atomic.Int64 // requests being handled, for tests

	closeOnce sync.Once
	closeErr  error
}

// Listen binds the control socket at path (usually
// layout.Home.ControlSocketPath) and serves sup on it until Close. A stale
// socket left by a dead process is replaced; a live one is messages.ErrBusy.
func Listen(sup *actors.Supervisor, path string, opts ServerOptions) (*Server, error) {
	ln, err := listenSocket(path)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = sup.Logger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		backend: NewLocal(sup),
		ln:      ln,
		path:    path,
		opts:    opts,
		log:     log.WithField("socket", path),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting and drains: a request in flight is finished and
// answered (each is bounded by its own operation), except the long ones
// (wait, run, events), which are ended with messages.ErrShuttingDown; a
// connection accepted but not yet read is answered NotServed, so that its
// client sends the request again to whoever serves the home next. No
// request is cancelled because this server goes away. Close then removes
// the socket. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.closeErr = s.ln.Close()
		s.cancel() // ends the long requests
		s.wg.Wait()
		_ = s.backend.Close() // ends Waits; does not touch the supervisor
	})
	return s.closeErr
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if s.closing.Load() {
				return
			}
			// EMFILE and friends: back off instead of spinning, as
			// net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.WithError(err).Warn("control socket accept failed; retrying")
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			if s.closing.Load() {
				return
			}
			continue
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// serveConn answers one request on conn.
func (s *Server) serveConn(conn *net.UnixConn) {
	defer conn.Close()
	cred, err := peerCred(conn)
	if err != nil {
		s.log.WithError(err).Warn("control connection refused: peer credentials unavailable")
		s.refuse(conn, messages.Errorf(ErrPermissionDenied, "peer credentials unavailable"))
		return
	}
	log := s.log.WithField("peer_pid", cred.Pid)
	if !peerAllowed(cred.Uid) {
		log.WithField("peer_uid", cred.Uid).Warn("control connection refused: peer uid is neither ours nor root")
		s.refuse(conn, messages.Errorf(ErrPermissionDenied,
			"uid %d may not use the control socket %s (only uid %d and root may)", cred.Uid, s.path, os.Geteuid()))
		return
	}
	_ = conn.SetReadDeadline(time.Now().Add(requestReadTimeout))
	var req Request
	dec := json.NewDecoder(io.LimitReader(conn, maxRequestBytes))
	// A field this server does not know would be dropped without a word
	// (a spec's "security": {"user": ...} from a newer or mistaken client,
	// and the guest would run as root): refuse it instead. The decoder's
	// message names the field, never a value.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.reply(conn, Response{Error: messages.Errorf(messages.ErrBadSpec, "control request: %v", err)})
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if s.closing.Load() {
		s.reply(conn, Response{NotServed: true, Error: messages.Errorf(messages.ErrShuttingDown, "control socket %s: the server is closing; the request was not served", s.path)})
		return
	}
	if req.Start != nil {
		// Whatever this request makes the server log, at any level (its box
		// ID included, even when the start is refused), is scrubbed of its
		// secrets; the box registers them itself for its life.
		defer logging.Register(req.Start.Spec.SecretValues()...).Release()
	}
	o, ok := operationFor(req.Op)
	if !ok {
		s.reply(conn, Response{Error: messages.Errorf(messages.ErrBadSpec, "control request: unknown op %q", req.Op)})
		return
	}
	if err := s.refuseAttached(&req); err != nil {
		s.reply(conn, Response{Error: err})
		return
	}

	// A request ends when its client hangs up (a CLI interrupted, or
	// killed: a run then stops its box), and a long one also when the
	// server closes; the others finish.
	base := context.Background()
	if o.long {
		base = s.ctx
	}
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	peerGone := watchPeerClose(conn, cancel)
	defer func() { <-peerGone }() // after conn.Close (deferred earlier, runs later) unblocks it
	defer conn.Close()

	start := time.Now()
	s.active.Add(1)
	var resp Response
	if o.serve == nil {
		resp = Response{Server: &ServerInfo{PID: os.Getpid(), Home: s.backend.Home(), Protocol: ProtocolVersion, Temporary: s.opts.Temporary}}
	} else {
		var writeMu sync.Mutex
		x := &exchange{
			send: func(r Response) error {
				writeMu.Lock()
				defer writeMu.Unlock()
				return s.write(conn, r)
			},
			awaitingRelease: s.opts.awaitingRelease,
		}
		resp = o.serve(ctx, s.backend, &req, x)
		if req.Op == OpStop && resp.Error == nil && s.opts.OnStop != nil {
			s.opts.OnStop(req.ID, time.Since(start))
		}
	}
	s.active.Add(-1)
	entry := log.WithFields(logrus.Fields{"op": req.Op, "took": time.Since(start)})
	if req.ID != "" {
		entry = entry.WithField("box_id", req.ID)
	}
	if resp.Error != nil {
		entry = entry.WithField("error", resp.Error.Msg)
	}
	entry.Debug("control request served")
	s.reply(conn, resp)
}

// refuseAttached refuses, on a temporary server, a start or run of a box
// that would be attached to this process: it would die when the command
// that serves the home exits.
func (s *Server) refuseAttached(req *Request) *messages.Error {
	if !s.opts.Temporary || (req.Op != OpStart && req.Op != OpRun) || req.Start == nil ||
		req.Start.Detach || req.Start.Spec.Detach {
		return nil
	}
	return messages.Errorf(messages.ErrBusy,
		"control socket %s is served for a while by a foreground command (pid %d); an attached box started through it would stop with that command. Run `boxsup supervise` to run several foreground boxes at once",
		s.path, os.Getpid())
}

// watchPeerClose cancels the request when the client hangs up (a CLI
// interrupted while waiting) or half-closes the connection (a run's
// release); the client sends nothing after its request, so any read result
// means one of them, or that the connection is being closed.
func watchPeerClose(conn *net.UnixConn, cancel context.CancelFunc) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b [1]byte
		_, _ = conn.Read(b[:])
		cancel()
	}()
	return done
}

// refuse reads what the refused peer sent (so that closing with unread data
// does not reset the connection before it reads the answer) and answers with
// the error.
func (s *Server) refuse(conn *net.UnixConn, e *messages.Error) {
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	var req Request
	_ = json.NewDecoder(io.LimitReader(conn, maxRequestBytes)).Decode(&req)
	s.reply(conn, Response{Error: e})
}

func (s *Server) reply(conn *net.UnixConn, resp Response) {
	if err := s.write(conn, resp); err != nil {
		s.log.WithError(err).Debug("writing the control reply failed")
	}
}

// write sends one response line.
func (s *Server) write(conn *net.UnixConn, resp Response) error {
	_ = conn.SetWriteDeadline(time.Now().Add(replyWriteTimeout))
	return json.NewEncoder(conn).Encode(resp)
}

func statusReply(st messages.BoxStatus, err error) Response {
	st.Err = nil // the error travels once, in Response.Error
	return Response{Status: &st, Error: wireError(err)}
}

// wireError turns an error into its wire form, keeping its code; a context
// error (the request was cancelled or timed out) becomes ErrTimeout or
// ErrShuttingDown, which the client can test with errors.Is.
func wireError(err error) *messages.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return messages.Errorf(messages.ErrTimeout, "%v", err)
	case errors.Is(err, context.Canceled):
		return messages.Errorf(messages.ErrShuttingDown, "request cancelled: %v", err)
	}
	return messages.AsError(err)
}
