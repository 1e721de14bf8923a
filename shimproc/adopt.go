package shimproc

import (
	"errors"
	"fmt"
	"os"
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
	// at spawn), or "" when the box had none. The process must be in it: a
	// cgroup is killed whole, so it is never taken on a record's word.
	Cgroup string
	// CgroupParent, when set, is the directory the recorded cgroup must lie
	// under (the box's own cgroup, BoxCgroupDir): a record naming another
	// cgroup is refused.
	CgroupParent string
	// Shim, when set, requires the process to be a shim of the box
	// (verifyShim): its argv, and as the check says, its working directory
	// and binary.
	Shim *ShimCheck
	// Logger receives the package's logs (fields box_id, pid); nil discards.
	Logger logrus.FieldLogger
}

// Adopt takes over a running shim recorded by identity, e.g. after the
// supervisor restarted. The pidfd is opened first and the identity verified
// second, so the PID cannot be recycled in between: a different start time or
// boot id, or (with opts.Shim) a process that is not a shim of the box, is
// messages.ErrIdentityMismatch and that process is never signalled. A process
// that no longer exists, or that is a zombie of another parent, gives an
// error wrapping ErrGone; a zombie child of this process whose identity
// matches is adopted (so that it is reaped) and its Exited closes at once. A
// recorded cgroup that is not under opts.CgroupParent or does not hold the
// process is messages.ErrUnverified. Any other error (EMFILE, EACCES,
// ENOMEM while reading /proc) says nothing about the process: see IsVerdict.
// The handle is owned (it reaps and knows the wait status) when this process
// is the shim's parent, as after an actor restart within the same process.
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

// AdoptPID takes over process pid, which another tool started as a shim of
// box (`SHIM --box-id ID`, and one of opts.Shim's binaries): its identity is
// read under a pidfd, and it must pass opts.Shim's check (its working
// directory is not required to be the box's). Its cgroup becomes the kill
// target only when it lies under opts.CgroupParent; otherwise the box is
// killed through the process group the shim leads, or through its pidfd.
func AdoptPID(box layout.Box, pid int, opts AdoptOptions) (*Handle, error) {
	if pid <= 1 {
		return nil, messages.Errorf(messages.ErrIdentityMismatch, "box %s: pid %d cannot be a box runner", box.ID, pid)
	}
	pfd, err := openPidFD(pid)
	if err != nil {
		return nil, fmt.Errorf("box %s: adopting pid %d: %w", box.ID, pid, err)
	}
	id, err := ReadIdentity(pid)
	if err == nil {
		opts.Cgroup = ""
		if rel, cerr := procCgroupV2(pid); cerr == nil && opts.CgroupParent != "" {
			if root, ok := CgroupAvailable(); ok && cgroupUnder(root+rel, opts.CgroupParent) {
				opts.Cgroup = root + rel
			}
		}
		chk := ShimCheck{}
		if opts.Shim != nil {
			chk = *opts.Shim
		}
		chk.Cwd = false
		opts.Shim = &chk
		var h *Handle
		log := loggerOrDiscard(opts.Logger).WithFields(logrus.Fields{"box_id": box.ID, "pid": pid})
		if h, err = adoptVerified(box, id, opts, pfd, log); err == nil {
			h.startWatcher()
			return h, nil
		}
	}
	_ = pfd.close()
	return nil, err
}

// adoptVerified checks the identity of the process behind pfd and builds its
// handle (without starting the watcher).
func adoptVerified(box layout.Box, rec messages.Identity, opts AdoptOptions, pfd *pidFD, log logrus.FieldLogger) (*Handle, error) {
	pid := rec.PID
	st, err := readProcStat(pid)
	if err != nil {
		// Reaped after pidfd_open (ErrGone), or unreadable right now.
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
	if opts.Shim != nil && !st.zombie() {
		if err := verifyShim(box, pid, *opts.Shim); err != nil {
			return nil, err
		}
	}
	if opts.Cgroup != "" && !st.zombie() {
		if err := checkAdoptedCgroup(pid, opts); err != nil {
			return nil, fmt.Errorf("box %s: %w", box.ID, err)
		}
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
	return h, nil
}

// checkAdoptedCgroup makes sure the recorded cgroup may be killed for this
// process: it lies under the box's own cgroup and holds the process.
func checkAdoptedCgroup(pid int, opts AdoptOptions) error {
	root, ok := CgroupAvailable()
	if !ok || !strings.HasPrefix(opts.Cgroup, root+"/") {
		return messages.Errorf(messages.ErrUnverified, "recorded cgroup %s is not under a writable cgroup v2 root", opts.Cgroup)
	}
	if opts.CgroupParent != "" && !cgroupUnder(opts.Cgroup, opts.CgroupParent) && opts.Cgroup != opts.CgroupParent {
		return messages.Errorf(messages.ErrUnverified, "recorded cgroup %s is not the box's (under %s)", opts.Cgroup, opts.CgroupParent)
	}
	if err := verifyCgroupMember(pid, root, opts.Cgroup); err != nil {
		if errors.Is(err, ErrGone) {
			return err
		}
		return messages.Errorf(messages.ErrUnverified, "the shim is not in its recorded cgroup: %v", err)
	}
	return nil
}
