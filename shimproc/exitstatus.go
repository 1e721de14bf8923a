package shimproc

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// exitFileSlack is how much earlier than the shim's start an exit record's
// finished_at may be and still count as this run's: the start time is known to
// 10 ms and a shim may write finished_at with one-second precision.
const exitFileSlack = 2 * time.Second

// settleExit decides the exit record once the shim has exited:
//
//  1. exit.json, when this run wrote it (Spawn rotates the previous one away
//     first; finished_at must not predate the shim's start): it describes the
//     guest, which the wait status cannot (source "exit_file");
//  2. else an owned child's wait status: killed by a signal (e.g. KillTree's
//     SIGKILL, which leaves the shim no time to write exit.json) or its exit
//     code (source "wait");
//  3. else "unknown (no exit record)".
//
// Either way, a box whose memory cgroup reports OOM kills is told apart
// (markOOM).
func (h *Handle) settleExit(ws unix.WaitStatus, haveWait bool) messages.ExitRecord {
	return h.markOOM(h.exitRecord(ws, haveWait))
}

// exitRecord is settleExit's record before the OOM check.
func (h *Handle) exitRecord(ws unix.WaitStatus, haveWait bool) messages.ExitRecord {
	now := time.Now()
	if rec, ok := h.readThisRunsExitFile(); ok {
		rec.Source = messages.SourceExitFile
		rec.Reason = redactSecrets(rec.Reason, nil) // a shim's text: it may quote the spec
		if rec.FinishedAt.IsZero() {
			rec.FinishedAt = now
		}
		return rec
	}
	if haveWait {
		switch {
		case ws.Signaled():
			// 128+N, as the shim reports a guest killed by signal N and a
			// shell would: the code is known, not missing.
			return messages.ExitRecord{
				ExitCode:   128 + int(ws.Signal()),
				Signal:     signalName(ws.Signal()),
				Reason:     "killed",
				FinishedAt: now,
				Source:     messages.SourceWait,
			}
		case ws.Exited():
			return messages.ExitRecord{
				ExitCode:   ws.ExitStatus(),
				Reason:     "exited without an exit record",
				FinishedAt: now,
				Source:     messages.SourceWait,
			}
		}
	}
	return messages.UnknownExit(now)
}

// Reasons of a SIGKILL that the OOM killer may have sent: the shim's for a
// guest that died of a signal, and settleExit's for a shim killed outright.
// Any other reason names who killed it (a stop).
const (
	reasonShimSignal = "signal"
	reasonWaitKilled = "killed"
)

// markOOM reads the generation's OOM kill count (memory.events or
// memory.oom_control; it is per generation, since each has its own cgroup)
// and, when the kernel killed any of its processes, says so: a guest (or
// shim) that died of SIGKILL with nobody else named as the killer gets the
// reason messages.ReasonOOMKilled; any other record gets a note.
func (h *Handle) markOOM(rec messages.ExitRecord) messages.ExitRecord {
	cf := h.cgroupFiles()
	if cf == nil {
		return rec
	}
	n := cf.oomKills()
	if n == 0 {
		return rec
	}
	if rec.Signal == "SIGKILL" && (rec.Reason == reasonShimSignal || rec.Reason == reasonWaitKilled) {
		rec.Reason = messages.ReasonOOMKilled
		return rec
	}
	note := fmt.Sprintf("%d process(es) of the box OOM-killed", n)
	if rec.Reason == "" {
		rec.Reason = note
	} else {
		rec.Reason += "; " + note
	}
	return rec
}

// A transient error reading exit.json (the supervisor short of descriptors
// or memory) is not a verdict: the record is read again, a few times over
// about 300 ms, before the exit is settled without it. An operator's trial
// saw a guest's SIGKILL reported as "exit 137, no exit record" when the
// read failed with EMFILE.
const (
	exitReadAttempts = 6
	exitReadFirstGap = 10 * time.Millisecond
)

// readExitRecord reads the box's exit.json, through the handle's test hook
// when it has one.
func (h *Handle) readExitRecord() (messages.ExitRecord, error) {
	if h.readExit != nil {
		return h.readExit(h.box)
	}
	return h.box.ReadExit()
}

// transientReadError reports whether a failed read may succeed if tried
// again soon.
func transientReadError(err error) bool {
	for _, errno := range []unix.Errno{unix.EMFILE, unix.ENFILE, unix.ENOMEM, unix.EINTR, unix.EAGAIN, unix.ENOBUFS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// readThisRunsExitFile reads exit.json and accepts it only when it was
// written after this shim started.
func (h *Handle) readThisRunsExitFile() (messages.ExitRecord, bool) {
	rec, err := h.readExitRecord()
	for gap, attempt := exitReadFirstGap, 1; err != nil && transientReadError(err) && attempt < exitReadAttempts; gap, attempt = 2*gap, attempt+1 {
		time.Sleep(gap)
		rec, err = h.readExitRecord()
	}
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.WithError(err).Warn("ignoring unreadable exit record")
		}
		return messages.ExitRecord{}, false
	}
	if !rec.FinishedAt.IsZero() && rec.FinishedAt.Before(h.startedAt.Add(-exitFileSlack)) {
		h.log.WithField("finished_at", rec.FinishedAt).Warn("ignoring an exit record older than the box runner")
		return messages.ExitRecord{}, false
	}
	return rec, true
}

// signalName names a signal the way exit records do ("SIGKILL").
func signalName(sig unix.Signal) string {
	if name := messages.SignalName(int(sig)); name != "" {
		return name
	}
	return "SIG" + strconv.Itoa(int(sig))
}
