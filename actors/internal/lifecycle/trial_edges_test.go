package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestRestartWhoseGuestCannotRunIsJudgedLikeACrash (found by an operator:
// a box whose script was removed ended failed at its first restart, though
// ARCHITECTURE says a restart that cannot start is judged within the
// limit): the shim reports the exec failure through the ready path.
func TestRestartWhoseGuestCannotRunIsJudgedLikeACrash(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	d.m.opts.Restart = messages.RestartPolicy{Mode: messages.RestartOnFailure, MaxRestarts: 2, Window: time.Hour}
	d.m.opts.Startable = true
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 2}})
	d.ackAll()
	gen := uint64(1)
	for restart := 1; ; restart++ {
		d.expectPhase(Restarting)
		d.feed(RestartTimer{Gen: gen})
		d.ackAll()
		gen = d.m.rec.Generation
		d.feed(Spawned{Gen: gen, Proc: Proc{Identity: messages.Identity{PID: 500 + restart}}})
		d.ackAll()
		execFailed := messages.ExitRecord{ExitCode: 127, Reason: "exec failed: /tmp/p.sh: no such file or directory"}
		d.feed(Ready{Gen: gen, Err: messages.Errorf(messages.ErrStartFailed, "the box runner ended without signalling ready"), Exit: &execFailed})
		d.ackAll()
		if d.m.Phase() == Failed {
			if restart != 2 {
				t.Fatalf("failed after restart %d; want after 2 (the limit)", restart)
			}
			return
		}
		if restart > 2 {
			t.Fatalf("still %s after %d restarts with a limit of 2", d.m.Phase(), restart)
		}
	}
}

// TestStartAfterARemovalThatLeftFilesIsRefused (found by an operator: a
// start of a box whose rm had hidden its directory and left files waited
// 40 s for a state.json that could never be written, then timed out).
func TestStartAfterARemovalThatLeftFilesIsRefused(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	stop := d.waiter()
	d.feed(Stop{W: stop})
	d.ackAll()
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 143}})
	d.ackAll()
	d.expectPhase(Exited)
	rm := d.waiter()
	d.feed(Remove{W: rm})
	d.ackAll()
	d.feed(Removed{Err: fmt.Errorf("remove box %q: its files are left in /h/boxes/.web.removed-x: operation not permitted", "web"), Hidden: true})
	d.expectPhase(Exited)
	if st := d.mustReply(rm); st.Err == nil {
		t.Fatalf("the failed removal was answered %+v", st)
	}
	w := d.waiter()
	d.feed(Start{W: w})
	d.expectPhase(Exited)
	st := d.mustReply(w)
	if !errors.Is(messages.Err(st.Err), messages.ErrBusy) || !strings.Contains(st.Err.Error(), "remove it again") {
		t.Fatalf("a start after the failed removal: %+v; want ErrBusy saying to remove it again", st.Err)
	}
	if len(find[Persist](d.last)) != 0 {
		t.Fatalf("the refused start wrote a record: %s", describe(d.last))
	}
}
