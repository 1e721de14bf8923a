package shimproc

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// cgroupRemoveWait bounds how long RemoveCgroup waits for killed members to
// finish tearing down.
const cgroupRemoveWait = 500 * time.Millisecond

// Handle is a box's shim process, spawned by Start/Spawn (owned: this process
// is its parent) or taken over by Adopt. It holds one pidfd; one goroutine per
// handle waits for the exit in the Go netpoller. All methods are safe for
// concurrent use.
type Handle struct {
	box       layout.Box
	pid       int
	identity  messages.Identity
	owned     bool
	cgroup    string    // absolute cgroup dir, "" when none
	pgid      int       // process group to kill when there is no cgroup; 0 = none
	startedAt time.Time // wall time the shim started (from its start ticks)
	log       logrus.FieldLogger
	// readExit, when set (tests), reads exit.json instead of the box.
	readExit func(layout.Box) (messages.ExitRecord, error)
	pidfd    *pidFD
	secrets  []string // the spec's secret values, scrubbed from error text

	inPlace      bool          // spawned with restart_in_place: fd 3 becomes the restart line
	readyTimeout time.Duration // spawn → ready limit (spawned handles)
	readySince   time.Time     // when the ready timeout started counting (the spawn)
	handOver     *handOver     // the spec's delivery (spawned handles); nil when adopted

	exited      chan struct{} // closed once the shim exited (and, if owned, was reaped)
	watcherDone chan struct{} // closed when the exit watcher goroutine returned

	mu         sync.Mutex
	exitSeen   bool                // the watcher saw the exit (set before exited closes)
	reaped     bool                // an owned child was reaped (by us or, ECHILD, by someone else): its PID may be reused now
	exit       messages.ExitRecord // valid once exited is closed
	readyR     *os.File            // read end of the ready pipe; nil once ready or adopted
	line       *restartLine        // the restart line, once ready (restart_in_place); nil otherwise
	keepalive  *os.File            // write end of the keepalive pipe; nil when detached or taken
	closed     bool
	unregister func() // drops the spec's secrets from the log redactor

	readyMu  sync.Mutex // serialises WaitReady
	readyErr error      // outcome of a finished WaitReady; nil when ready
	readyRun bool       // a WaitReady finished

	metricsMu sync.Mutex
	metrics   metricsState

	cgFilesOnce sync.Once
	cgFiles     *cgroupFiles // where the generation's cgroup files are (cgroupFiles)
}

// PID returns the shim's process id.
func (h *Handle) PID() int { return h.pid }

// Identity returns the shim's identity (pid, start time, boot id), the value
// to record in state.json for a later Adopt.
func (h *Handle) Identity() messages.Identity { return h.identity }

// Owned reports whether this process is the shim's parent: it reaps the shim
// and knows its wait status.
func (h *Handle) Owned() bool { return h.owned }

// CgroupPath returns the box's cgroup directory (absolute), or "" when the
// box has none.
func (h *Handle) CgroupPath() string { return h.cgroup }

// StartedAt returns the wall-clock time the shim process started.
func (h *Handle) StartedAt() time.Time { return h.startedAt }

// Exited returns a channel closed when the shim has exited. An owned child has
// been reaped by then, so ExitStatus is final. After Close without an exit the
// channel never closes.
func (h *Handle) Exited() <-chan struct{} { return h.exited }

// ExitStatus returns the shim's exit record. It is meaningful once Exited is
// closed; before that it reports an unknown, still running status.
func (h *Handle) ExitStatus() messages.ExitRecord {
	select {
	case <-h.exited:
	default:
		return messages.ExitRecord{ExitCode: -1, Reason: "still running", Source: messages.SourceNone}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exit
}

// TakeKeepalive hands the keepalive pipe's write end to the caller, who keeps
// it open for as long as the box should live (closing it, or exiting, makes an
// attached shim stop its guest and exit). It returns nil for a detached or
// adopted shim, after an earlier call, or after Close.
func (h *Handle) TakeKeepalive() *os.File {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.keepalive
	h.keepalive = nil
	return f
}

// Close stops the exit watcher, closes the pidfd, the ready pipe and (unless
// taken) the keepalive pipe, and drops the spec's secrets from the log
// redactor. It never signals the process, but closing the keepalive makes an
// attached shim stop its guest. An owned child that exits after Close stays a
// zombie until this process exits or adopts it again. Close is idempotent.
func (h *Handle) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var errs []error
	for _, f := range []*os.File{h.readyR, h.keepalive} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	h.readyR, h.keepalive = nil, nil
	if h.line != nil {
		// The shim's next question finds no one to answer: it ends.
		errs = append(errs, h.line.close())
	}
	unregister := h.unregister
	h.unregister = nil
	h.mu.Unlock()

	// Closing the pidfd makes the watcher's netpoller wait return; wait for the
	// goroutines so that none outlives the handle.
	h.stopHandOver()
	errs = append(errs, h.pidfd.close())
	<-h.watcherDone
	if unregister != nil {
		unregister()
	}
	return errors.Join(errs...)
}

// RemoveCgroup removes the shim's generation cgroup once it is empty (after
// the exit and a KillTree). It waits briefly for killed members to finish
// tearing down, then fails with messages.ErrCgroup if processes remain. It
// is a no-op without a cgroup or when the cgroup is already gone. The box's
// cgroup above it goes too when no generation's is left (a next
// generation's spawn recreates it: creating races removal harmlessly).
func (h *Handle) RemoveCgroup() error {
	if h.cgroup == "" {
		return nil
	}
	if err := removeCgroupTree(h.cgroup); err != nil { // with any cgroups the guest made
		return err
	}
	if strings.HasPrefix(filepath.Base(h.cgroup), "gen-") {
		removeIfEmpty(filepath.Dir(h.cgroup)) // the box's, when no generation is left
	}
	return removeV1Gen(h.cgroup, cgroupRemoveWait)
}

// startWatcher starts the goroutine that waits for the shim's exit.
func (h *Handle) startWatcher() {
	go h.watch()
}

// watch waits in the netpoller for the pidfd to become readable, reaps an
// owned child, settles the exit record and closes exited. It returns without
// closing exited when Close closed the pidfd first.
func (h *Handle) watch() {
	defer close(h.watcherDone)
	for {
		err := h.pidfd.waitExit()
		if err == nil {
			break
		}
		h.mu.Lock()
		closed := h.closed
		h.mu.Unlock()
		if closed || errors.Is(err, os.ErrClosed) {
			return
		}
		h.log.WithError(err).Warn("exit watcher: polling the pidfd failed; retrying")
		time.Sleep(10 * time.Millisecond)
	}

	rec := h.reapAndSettle()

	h.mu.Lock()
	h.exitSeen = true
	h.exit = rec
	if h.readyR != nil {
		// Wake a WaitReady blocked on the ready pipe: a grandchild may still
		// hold the write end, so EOF is not guaranteed.
		_ = h.readyR.SetReadDeadline(time.Unix(1, 0))
	}
	h.mu.Unlock()
	close(h.exited)
	h.log.WithField("exit", rec.String()).Debug("box runner exited")
}

// settleSlots bounds the exit watchers that are inside the blocking system
// calls of settling an exit at once (wait4, reading exit.json, the cgroup's
// files). Each watcher parks in the netpoller until its shim exits, holding
// no thread; but when a stop storm ends a thousand shims, a thousand
// watchers wake together, and Go keeps every thread that a blocked system
// call made it create: unbounded, the supervisor went from 10 to 40–150
// threads. Waiting for a slot holds no thread.
var settleSlots = make(chan struct{}, max(4, 2*runtime.GOMAXPROCS(0)))

// reapAndSettle reaps an owned child and settles its exit record, once one
// of settleSlots is free.
func (h *Handle) reapAndSettle() messages.ExitRecord {
	settleSlots <- struct{}{}
	defer func() { <-settleSlots }()
	var ws unix.WaitStatus
	var haveWait bool
	if h.owned {
		ws, haveWait = h.reap()
	}
	return h.settleExit(ws, haveWait)
}

// reapRetries and reapRetryPause bound the wait for an exited child to
// become reapable: the pidfd fires once the whole thread group is gone, so
// wait4 succeeds at once in practice; the retries only cover a tracer that
// holds the zombie for a moment.
const (
	reapRetries    = 200
	reapRetryPause = 5 * time.Millisecond
)

// reap collects an owned child's wait status. Each wait4 runs under h.mu and
// sets reaped in the same critical section, so KillTree's process-group kill
// (also under h.mu) never happens after the PID, and with it the group id,
// became reusable. A child that stays unreapable is left (a zombie until this
// process exits) and its status comes from exit.json.
func (h *Handle) reap() (unix.WaitStatus, bool) {
	var ws unix.WaitStatus
	for attempt := 0; attempt < reapRetries; attempt++ {
		h.mu.Lock()
		wpid, err := unix.Wait4(h.pid, &ws, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			h.mu.Unlock()
			continue
		case err != nil:
			// ECHILD: someone else reaped it, so the PID is not ours to
			// vouch for any more; the status comes from exit.json.
			h.reaped = true
			h.mu.Unlock()
			h.log.WithError(err).Warn("reaping box runner failed")
			return 0, false
		case wpid == h.pid:
			h.reaped = true
			h.mu.Unlock()
			return ws, true
		}
		h.mu.Unlock()
		time.Sleep(reapRetryPause)
	}
	h.log.Warn("box runner exited but could not be reaped; its status comes from exit.json")
	return 0, false
}
