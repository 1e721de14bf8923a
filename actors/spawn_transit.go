package actors

import (
	"errors"
	"sync"
	"time"

	"github.com/boxsup/boxsup/shimproc"
)

// spawnTransit holds the handle of each shim a spawn helper produced from
// the moment the helper sends it to its box actor until the actor takes it.
// An actor can stop in between (Shutdown stops every box actor); the
// message then reaches nobody, and without this the shim would run on with
// nobody owning it: an attached one kept alive by a keepalive pipe nobody
// closes, and left a zombie once it ends. Shutdown settles what is left.
type spawnTransit struct {
	mu      sync.Mutex
	handles map[*shimproc.Handle]bool // the shim is detached
}

// put records h, a shim that is detached or not, as sent and not yet taken.
func (t *spawnTransit) put(h *shimproc.Handle, detached bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.handles == nil {
		t.handles = make(map[*shimproc.Handle]bool)
	}
	t.handles[h] = detached
}

// take records that a box actor received h.
func (t *spawnTransit) take(h *shimproc.Handle) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.handles, h)
}

// settle ends every shim that reached no actor, once no helper runs any
// more (nothing can be put after). A shim this supervisor started is
// killed with its tree and reaped, waiting at most wait in all, unless it
// is detached and leaveDetached is set (Shutdown(LeaveRunning)): its record
// names its cgroup and spawn token, and the next supervisor adopts it, as
// after a crash. An attached shim cannot outlive the supervisor anyway, and
// StopAll leaves nothing running. A shim a spawn adopted instead (a running
// shim of the box found in its cgroup) is left as it was found. It returns
// the PIDs of the shims it killed.
func (t *spawnTransit) settle(wait time.Duration, leaveDetached bool) (killed []int, err error) {
	t.mu.Lock()
	hs := t.handles
	t.handles = nil
	t.mu.Unlock()
	kill := func(h *shimproc.Handle, detached bool) bool { return h.Owned() && !(detached && leaveDetached) }
	var errs []error
	for h, detached := range hs {
		if !kill(h, detached) {
			continue
		}
		if kerr := h.KillTree(); kerr != nil {
			errs = append(errs, kerr)
		}
		killed = append(killed, h.PID())
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	expired := false
	for h, detached := range hs {
		if kill(h, detached) && !expired {
			select {
			case <-h.Exited():
				_ = h.RemoveCgroup()
			case <-deadline.C:
				expired = true
			}
		}
		_ = h.Close()
	}
	return killed, errors.Join(errs...)
}
