package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestHostShortageDoesNotUseUpTheRestartLimit (found by an operator: a
// burst of EMFILE in the supervisor failed a healthy box's five restarts in
// under a second): restarts that fail for want of a host resource are
// retried with a growing delay and not counted; the box keeps its limit
// for failures of its own.
func TestHostShortageDoesNotUseUpTheRestartLimit(t *testing.T) {
	t.Parallel()
	d, _ := runningBox(t)
	d.m.opts.Restart = messages.RestartPolicy{Mode: messages.RestartAlways, MaxRestarts: 2, Window: time.Hour}
	d.m.opts.Startable = true
	d.feed(ProcExited{Gen: 1, Exit: messages.ExitRecord{ExitCode: 1}})
	d.expectPhase(Restarting)
	d.ackAll()
	emfile := fmt.Errorf("rotating the exit record: %w", &os.PathError{Op: "open", Path: "/h/boxes/web/exit.json", Err: syscall.EMFILE})
	gen := uint64(1)
	var delays []time.Duration
	for range 10 {
		d.feed(RestartTimer{Gen: gen})
		d.ackAll()
		d.expectPhase(Spawning)
		gen = d.m.rec.Generation
		d.feed(Spawned{Gen: gen, Err: emfile})
		d.expectPhase(Restarting)
		arms := find[Arm](d.last)
		if len(arms) != 1 {
			t.Fatalf("a shortage must re-arm the restart: %s", describe(d.last))
		}
		delays = append(delays, arms[0].Delay)
		st := d.m.Status(nil)
		if st.State != messages.StateRestarting || !strings.Contains(st.Reason, "too many open files") || !strings.Contains(st.Reason, "not counted") {
			t.Fatalf("status during the shortage = %+v", st)
		}
		d.ackAll()
	}
	if delays[0] != 100*time.Millisecond || delays[1] != 200*time.Millisecond || delays[9] != 30*time.Second {
		t.Fatalf("retry delays %v; want 100 ms doubling to 30 s", delays)
	}
	if st := d.m.Status(nil); st.Restarts != 1 {
		t.Fatalf("restarts = %d after ten shortages; want 1 (the crash's)", st.Restarts)
	}
	// An operator's start meanwhile (found by an operator: it failed the
	// same way and ended the box) is refused as busy; the retry stays armed.
	w := d.waiter()
	d.feed(Start{W: w})
	d.expectPhase(Restarting)
	if st := d.mustReply(w); !errors.Is(messages.Err(st.Err), messages.ErrBusy) {
		t.Fatalf("a start during the shortage: %+v; want ErrBusy", st.Err)
	}
	if len(find[Disarm](d.last)) != 0 {
		t.Fatalf("the start disarmed the retry: %s", describe(d.last))
	}
	// The shortage is over: the restart happens, and the next start resets
	// the delay.
	d.feed(RestartTimer{Gen: gen})
	d.ackAll()
	gen = d.m.rec.Generation
	d.feed(Spawned{Gen: gen, Proc: Proc{Identity: messages.Identity{PID: 300}}})
	d.ackAll()
	d.feed(Ready{Gen: gen})
	d.ackAll()
	d.expectPhase(Running)
	if d.m.shortages != 0 {
		t.Fatalf("shortages = %d once a spawn succeeded; want 0", d.m.shortages)
	}
	// A failure of the box's own (exec failed) still counts.
	d.feed(ProcExited{Gen: gen, Exit: messages.ExitRecord{ExitCode: 1}})
	d.ackAll()
	d.feed(RestartTimer{Gen: gen})
	d.ackAll()
	d.feed(Spawned{Gen: d.m.rec.Generation, Err: fmt.Errorf("exec failed: %w", syscall.ENOENT)})
	d.ackAll()
	if d.m.Phase() != Failed {
		t.Fatalf("phase %s after the third failure within the window; want Failed", d.m.Phase())
	}
}
