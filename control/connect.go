package control

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// DefaultLockWait is how long Connect keeps trying when the home is locked
// by a process whose control socket does not answer yet (a supervisor that
// is still reconciling its boxes, or one on its way out).
const DefaultLockWait = 5 * time.Second

// lockRetryInterval paces Connect's retries while the home is locked.
const lockRetryInterval = 50 * time.Millisecond

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
	// LockWait bounds the retries while the home is locked and nobody
	// answers on its socket; 0 means DefaultLockWait.
	LockWait time.Duration
}

// Connect returns a Backend for the home (empty: layout.ResolveHome): a
// Client when a server answers on the home's control socket, else a Local
// that opens a Supervisor of its own (and holds the home lock until Close).
// A server that refuses this process's uid is an error (ErrPermissionDenied),
// not a reason to fall back.
func Connect(ctx context.Context, home string, opts ConnectOptions) (Backend, error) {
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
	sock, err := h.ControlSocketPath()
	if err != nil {
		return nil, err
	}
	wait := opts.LockWait
	if wait <= 0 {
		wait = DefaultLockWait
	}
	deadline := time.Now().Add(wait)
	cfg := opts.Config
	cfg.Home = home
	for {
		c, err := Dial(ctx, sock)
		if err == nil {
			return c, nil
		}
		if !noServer(err) {
			return nil, err
		}
		l, err := OpenLocal(cfg)
		if err == nil {
			if opts.Serve {
				if serr := l.Serve(sock, opts.ServerOptions); serr != nil {
					// Not fatal: this command works; others wait for the lock.
					l.sup.Logger().WithError(serr).Warn("not serving the control socket")
				}
			}
			return l, nil
		}
		if !errors.Is(err, messages.ErrHomeLocked) || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-time.After(lockRetryInterval):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// noServer reports whether a dial error means nobody serves the socket: it
// does not exist, or nothing listens on it.
func noServer(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED)
}
