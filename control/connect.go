package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// DefaultLockWait is how long Connect queues for the home lock when the
// caller gives no bound of its own: the home is held, without a server, by
// another command that opened it for its own duration (a stop waiting for
// its box, a run -d waiting for readiness), or by a supervisor that is still
// reconciling its boxes.
const DefaultLockWait = 30 * time.Second

// lockRetryInterval paces Connect's retries while the home is locked.
const lockRetryInterval = 50 * time.Millisecond

// lockNoticeAfter is how long Connect waits for the lock before it tells
// the user (ConnectOptions.Notice) why nothing happens.
const lockNoticeAfter = time.Second

// ConnectOptions configures Connect.
type ConnectOptions struct {
	// Config is used when no server answers and Connect opens a Local
	// supervisor; its Home is replaced by Connect's home.
	Config actors.Config
	// Serve makes a Local also serve the control socket while it is open,
	// so that other commands reach the home through it meanwhile (a
	// foreground boxsup run holds the home for as long as its box runs).
	Serve bool
	// ServerOptions configure that server.
	ServerOptions ServerOptions
	// LockWait bounds the time spent queueing for the home lock while it is
	// held and nobody answers on its socket; 0 means DefaultLockWait. A
	// command passes its own timeout.
	LockWait time.Duration
	// Notice, when set, is called once if the lock is still held after a
	// second, with a sentence saying who holds it.
	Notice func(msg string)
	// Attach: the caller will start an attached box (a foreground run),
	// which must not live in another command's temporary supervisor (it
	// would die with it): a temporary server is not used, and the caller
	// queues for the home instead.
	Attach bool
	// RequireServer: the caller needs a boxsup supervise (events follow a
	// supervisor over time, which a supervisor opened for one command is
	// not): without one serving the home, or with only a temporary server
	// (a foreground command's), Connect fails with ErrNoServer instead of
	// opening a Local.
	RequireServer bool
}

// Connect returns a Backend for the home (empty: layout.ResolveHome): over a
// Client when a server answers on the home's control socket, else over a
// Local that opens a Supervisor of its own (and holds the home lock until
// Close). When the server goes away in the middle of a request that may be
// sent again (one it did not serve, or a query), the Backend connects anew
// and sends it again: no command fails because another command's temporary
// supervisor closed.
// The home is opened (checked and made canonical, see layout.Open) first.
// A server that refuses this process's uid is an error (ErrPermissionDenied),
// and so is a server running as another user (messages.ErrUnsafeHome) or
// one that does not answer (messages.ErrTimeout): none is a reason to fall
// back. While another process holds the home without serving it, Connect
// queues for the lock, up to opts.LockWait.
func Connect(ctx context.Context, home string, opts ConnectOptions) (Backend, error) {
	b, err := connectOnce(ctx, home, opts)
	if err != nil {
		return nil, err
	}
	return &reconnecting{cur: b, connect: func(ctx context.Context) (Backend, error) { return connectOnce(ctx, home, opts) }}, nil
}

// connectOnce is Connect without the reconnection.
func connectOnce(ctx context.Context, home string, opts ConnectOptions) (Backend, error) {
	if home == "" {
		var err error
		if home, err = layout.ResolveHome(); err != nil {
			return nil, err
		}
	}
	home, err := filepath.Abs(home)
	if err != nil {
		return nil, err
	}
	h, err := layout.Open(home)
	if err != nil {
		return nil, err
	}
	home = h.Root // canonical: the Local derives its cgroup parent from it
	sock, err := h.ControlSocketPath()
	if err != nil {
		return nil, err
	}
	wait := opts.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	began := time.Now()
	deadline := began.Add(wait)
	noticed := opts.Notice == nil
	cfg := opts.Config
	cfg.Home = home
	for {
		c, err := Dial(ctx, sock)
		switch {
		case opts.RequireServer && (err == nil || noServer(err)):
			if err == nil && !c.info.Temporary {
				c.specOf = storedSpec(h)
				return c, nil
			}
			why := "no `boxsup supervise` serves it"
			if err == nil {
				why = fmt.Sprintf("it is served for now by a foreground command (pid %d), not by a `boxsup supervise`", c.info.PID)
			}
			return nil, messages.Errorf(ErrNoServer, "home %s: %s; start `boxsup supervise` (it keeps the events of its boxes)", home, why)
		case err == nil && !(opts.Attach && c.info.Temporary):
			c.specOf = storedSpec(h)
			return c, nil
		case err == nil:
			// A foreground command serves the home for now; it holds the
			// lock, which the caller queues for below.
		case !noServer(err) && !serverGoing(err):
			return nil, err
		}
		l, err := OpenLocal(cfg)
		if err == nil {
			if opts.Serve {
				srvOpts := opts.ServerOptions
				srvOpts.Temporary = true
				if serr := l.Serve(sock, srvOpts); serr != nil {
					// Not fatal: this command works; others wait for the lock.
					l.sup.Logger().WithError(serr).Warn("not serving the control socket")
				}
			}
			return l, nil
		}
		if !errors.Is(err, messages.ErrHomeLocked) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (waited %v; a `boxsup supervise` serving this home lets commands run concurrently)",
				err, time.Since(began).Round(time.Millisecond))
		}
		if !noticed && time.Since(began) >= lockNoticeAfter {
			noticed = true
			opts.Notice(fmt.Sprintf("waiting for the home %s: %v (for up to %v)", home, err, wait))
		}
		select {
		case <-time.After(lockRetryInterval):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// storedSpec reads a box's spec.json, for the timeouts of requests that do
// not carry them.
func storedSpec(h *layout.Home) func(id string) (messages.StartBox, error) {
	return func(id string) (messages.StartBox, error) {
		b, err := h.Box(id)
		if err != nil {
			return messages.StartBox{}, err
		}
		return b.ReadSpec()
	}
}

// serverGoing reports whether a dial error means the server is going away
// (another command that served the home for now is exiting, and closed or
// refused the ping): its lock is about to be free, and is queued for like a
// held one. No command fails because another one ended.
func serverGoing(err error) bool {
	var ns *notServedError
	return errors.As(err, &ns) || errors.Is(err, messages.ErrShuttingDown) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// noServer reports whether a dial error means nobody serves the socket: it
// does not exist, or nothing listens on it.
func noServer(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}
