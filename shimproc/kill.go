package shimproc

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signal sends sig to the shim only (not its tree) through the pidfd, so it
// can never reach a recycled PID. After the shim exited it returns an error
// wrapping ErrGone.
func (h *Handle) Signal(sig syscall.Signal) error {
	if h.hasExited() {
		return fmt.Errorf("signal %v to pid %d: %w", sig, h.pid, ErrGone)
	}
	if err := h.pidfd.sendSignal(sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, h.pid, err)
	}
	return nil
}

// KillTree SIGKILLs every process of the box. With a cgroup it writes
// cgroup.kill (or, on kernels without it, kills each member through a pidfd).
// Without one it kills the shim's process group, but only while the group
// leader is known to be the shim: an owned shim not yet reaped (its PID, and
// so the group id, cannot be reused), an adopted shim whose pidfd does not
// report an exit. It also SIGKILLs the shim itself through the pidfd. A box
// that is already gone is not an error.
func (h *Handle) KillTree() error {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return errHandleClosed
	}
	var errs []error
	if h.cgroup != "" {
		if err := killCgroup(h.cgroup); err != nil {
			errs = append(errs, err)
		}
	} else if err := h.killProcessGroup(); err != nil {
		errs = append(errs, err)
	}
	if err := h.pidfd.sendSignal(unix.SIGKILL); err != nil && !errors.Is(err, ErrGone) {
		errs = append(errs, fmt.Errorf("SIGKILL to pid %d: %w", h.pid, err))
	}
	return errors.Join(errs...)
}

// killProcessGroup sends SIGKILL to the shim's process group under the
// leader guard described at KillTree.
func (h *Handle) killProcessGroup() error {
	if h.pgid <= 1 {
		return nil
	}
	// Holding h.mu keeps the watcher from reaping an owned shim meanwhile.
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errHandleClosed
	}
	if h.owned {
		if h.reaped {
			return nil
		}
	} else if h.exitSeen {
		return nil
	} else if gone, err := h.pidfd.exited(); err != nil || gone {
		return nil
	}
	if err := unix.Kill(-h.pgid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("SIGKILL to process group %d: %w", h.pgid, err)
	}
	return nil
}

// hasExited reports whether the exit watcher has seen the exit.
func (h *Handle) hasExited() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}
