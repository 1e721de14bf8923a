package shimproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// ErrGone means the recorded process no longer exists; the caller then reads
// the box's exit.json for its status. Compare with errors.Is.
var ErrGone = errors.New("process no longer exists")

// AdoptOptions are Adopt's optional inputs.
type AdoptOptions struct {
	// Cgroup is the box's cgroup directory as recorded (Handle.CgroupPath
	// at spawn), or "" when the box had none.
	Cgroup string
	// Logger receives the package's logs (fields box_id, pid); nil discards.
	Logger logrus.FieldLogger
}

// Adopt takes over a running shim recorded by identity, e.g. after the
// supervisor restarted. The pidfd is opened first and the identity verified
// second, so the PID cannot be recycled in between: a different start time or
// boot id is messages.ErrIdentityMismatch and that process is never signalled.
// A process that no longer exists, or that is a zombie of another parent,
// gives an error wrapping ErrGone; a zombie child of this process whose
// identity matches is adopted (so that it is reaped) and its Exited closes at
// once. The handle
// is owned (it reaps and knows the wait status) when this process is the
// shim's parent, as after an actor restart within the same process.
func Adopt(box layout.Box, rec messages.Identity, opts AdoptOptions) (*Handle, error) {
	log := loggerOrDiscard(opts.Logger).WithFields(logrus.Fields{"box_id": box.ID, "pid": rec.PID})
	if rec.PID <= 1 {
		return nil, messages.Errorf(messages.ErrIdentityMismatch, "box %s: recorded pid %d cannot be a box runner", box.ID, rec.PID)
	}
	pfd, err := openPidFD(rec.PID)
	if err != nil {
		return nil, fmt.Errorf("box %s: adopting: %w", box.ID, err)
	}
	h, err := adoptVerified(box, rec, opts, pfd, log)
	if err != nil {
		_ = pfd.close()
		return nil, err
	}
	h.startWatcher()
	log.WithField("owned", h.owned).Debug("box runner adopted")
	return h, nil
}

// adoptVerified checks the identity of the process behind pfd and builds its
// handle (without starting the watcher).
func adoptVerified(box layout.Box, rec messages.Identity, opts AdoptOptions, pfd *pidFD, log logrus.FieldLogger) (*Handle, error) {
	pid := rec.PID
	st, err := readProcStat(pid)
	if err != nil {
		// Reaped after pidfd_open: gone, whoever it was.
		return nil, fmt.Errorf("box %s: adopting: %w", box.ID, err)
	}
	boot, err := bootID()
	if err != nil {
		return nil, fmt.Errorf("box %s: adopting: %w", box.ID, err)
	}
	if rec.BootID != boot {
		return nil, messages.Errorf(messages.ErrIdentityMismatch,
			"box %s: pid %d was recorded during boot %q, this is boot %q", box.ID, pid, rec.BootID, boot)
	}
	if st.StartTime != rec.StartTime {
		return nil, messages.Errorf(messages.ErrIdentityMismatch,
			"box %s: pid %d started at tick %d, the record says %d (the pid was reused)", box.ID, pid, st.StartTime, rec.StartTime)
	}

	owned := st.PPID == os.Getpid()
	if st.zombie() && !owned {
		// It has exited; only its parent can reap it, and its status is in
		// exit.json. Reporting it as gone keeps a reconcile from calling a
		// dead box running until a watcher notices.
		return nil, fmt.Errorf("box %s: pid %d has exited (a zombie awaiting its parent): %w", box.ID, pid, ErrGone)
	}
	h := &Handle{
		box:         box,
		pid:         pid,
		identity:    messages.Identity{PID: pid, StartTime: st.StartTime, BootID: boot},
		owned:       owned,
		cgroup:      opts.Cgroup,
		startedAt:   startTimeToWall(st.StartTime),
		log:         log,
		pidfd:       pfd,
		exited:      make(chan struct{}),
		watcherDone: make(chan struct{}),
	}
	// Only a group leader's group is the box's tree; a shim that somehow
	// is not one is killed through its pidfd (and cgroup) alone.
	if st.PGID == pid {
		h.pgid = pid
	}
	if opts.Cgroup != "" && !st.zombie() {
		checkAdoptedCgroup(h, log)
	}
	return h, nil
}

// checkAdoptedCgroup warns when the adopted shim is not in its recorded
// cgroup. The identity matched, so the process is the box's; the recorded
// cgroup still holds what the box left there and stays the kill target.
func checkAdoptedCgroup(h *Handle, log logrus.FieldLogger) {
	root, ok := CgroupAvailable()
	if !ok || !strings.HasPrefix(h.cgroup, root+string(filepath.Separator)) {
		log.WithField("cgroup", h.cgroup).Warn("recorded cgroup is not under a writable cgroup v2 root")
		return
	}
	if err := verifyCgroupMember(h.pid, root, h.cgroup); err != nil {
		log.WithError(err).Warn("adopted box runner has left its cgroup")
	}
}
