package lifecycle

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/boxsup/boxsup/messages"
)

// A restart that fails because the supervisor's host ran short (descriptors,
// memory, processes, disk space) says nothing about the box: judged like a
// crash, a burst of EMFILE used up a healthy box's restart limit in under a
// second and left it failed for good. Such a failure is retried after
// retryDelay (100 ms doubling to 30 s, as for an unverifiable box) without
// counting against the restart limit; the box shows state restarting with
// the shortage as its reason.

// hostShortages are the errnos of a spawn that ran out of something the
// host, not the box, is short of.
var hostShortages = []syscall.Errno{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN, syscall.ENOBUFS,
	syscall.ENOSPC, syscall.EDQUOT,
}

// isHostShortage reports whether a failed spawn failed for want of a host
// resource.
func isHostShortage(err error) bool {
	for _, errno := range hostShortages {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// retryRestartLater schedules the restart whose spawn failed with a host
// shortage again, without counting it.
func (m *Machine) retryRestartLater(err error) Phase {
	m.shortages++
	delay := retryDelay(m.shortages)
	m.rec.State = messages.StateRestarting
	m.rec.Reason = fmt.Sprintf("restart failed on the supervisor's side (%v); trying again in %v (not counted against the restart limit)", err, delay)
	m.logf("warn", err, "restart #%d could not be started for want of a host resource; trying again in %v", m.rec.Restarts, delay)
	m.commit(nil)
	m.emit(Arm{Timer: RestartTimer{Gen: m.rec.Generation}, Delay: delay})
	return Restarting
}
