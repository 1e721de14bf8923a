package lifecycle

import (
	"syscall"
	"testing"

	"github.com/boxsup/boxsup/messages"
)

// atOnce is the policy under which a shim restarts its guest in place.
var atOnce = messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: -1, InitialBackoff: -1}

var guestKilled = messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL", Reason: "signal"}

// TestRestartInPlaceAnswersOnceTheExitIsOnDisk: the shim's question is
// answered R only from the commit of the record that holds the exit, and
// the events come with the answer.
func TestRestartInPlaceAnswersOnceTheExitIsOnDisk(t *testing.T) {
	t.Parallel()
	d, _ := readyBox(t, Options{Restart: atOnce})
	d.expectPhase(Running)
	d.feed(GuestExited{Gen: 1, Exit: guestKilled})
	if a := find[AnswerGuest](d.last); len(a) != 0 {
		t.Fatalf("answered %+v before the exit was on disk", a)
	}
	d.ackAll()
	if a := find[AnswerGuest](d.last); len(a) != 1 || !a[0].Restart {
		t.Fatalf("answer after the write = %+v, want one R", a)
	}
	d.expectPhase(Running)
	if st := d.m.Status(nil); st.Restarts != 1 || st.LastExit == nil || st.LastExit.Signal != "SIGKILL" || st.Generation != 1 {
		t.Fatalf("status after a restart in place = %+v", st)
	}
	want := []string{"BoxStarted", "BoxReady", "BoxExited", "BoxRestarting"}
	if got := d.published(); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

// TestAStopRacingARestartInPlaceAnnouncesNoRestart: a Stop that arrives
// while the granted restart's record is being written turns the answer
// into E. Nothing was restarted, so no BoxRestarting is published and no
// restart counted; the guest's exit comes once, as the stop's, when the
// shim ends (a new user saw two BoxExited and a restart that never came).
func TestAStopRacingARestartInPlaceAnnouncesNoRestart(t *testing.T) {
	t.Parallel()
	d, _ := readyBox(t, Options{Restart: atOnce})
	d.feed(GuestExited{Gen: 1, Exit: guestKilled})
	inPlace := d.last
	w := d.waiter()
	d.feed(Stop{W: w})
	d.expectPhase(Stopping)
	stop := d.last
	d.last = append(inPlace, stop...)
	d.ackAll()
	if a := find[AnswerGuest](d.last); len(a) != 1 || a[0].Restart {
		t.Fatalf("answer with a stop under way = %+v, want one E", a)
	}
	d.feed(ProcExited{Gen: 1, Exit: guestKilled})
	d.ackAll()
	st := d.mustReply(w)
	if st.State != messages.StateExited || st.Restarts != 0 {
		t.Fatalf("stop reply = %+v, want exited with no restart counted", st)
	}
	want := []string{"BoxStarted", "BoxReady", "BoxExited"}
	if got := d.published(); !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
}

// TestARestartInPlaceThatCouldNotBeRecordedIsJudgedOnce: a failed write
// answers E; the shim's exit, the same one, is then judged with the
// decision already taken: one restart, counted once.
func TestARestartInPlaceThatCouldNotBeRecordedIsJudgedOnce(t *testing.T) {
	t.Parallel()
	d, _ := readyBox(t, Options{Restart: atOnce})
	d.feed(GuestExited{Gen: 1, Exit: guestKilled})
	var fail []Event
	for _, e := range d.last {
		if p, ok := e.(Persist); ok {
			fail = append(fail, Persisted{Seq: p.Seq, Err: syscall.ENOSPC})
		}
	}
	d.feed(fail...)
	if a := find[AnswerGuest](d.last); len(a) != 1 || a[0].Restart {
		t.Fatalf("answer after a failed write = %+v, want one E", a)
	}
	d.feed(ProcExited{Gen: 1, Exit: guestKilled})
	d.expectPhase(Restarting)
	if st := d.m.Status(nil); st.Restarts != 1 {
		t.Fatalf("restarts = %d, want the one exit counted once", st.Restarts)
	}
}
