package shimproc

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// onlyGuest waits until the shim has exactly one live child other than
// not, and returns it.
func onlyGuest(t *testing.T, shim, not int) int {
	t.Helper()
	var guest int
	waitFor(t, 10*time.Second, "the shim's guest", func() bool {
		tree := descendants(shim)
		if len(tree) == 2 && tree[1] != not {
			guest = tree[1]
			return true
		}
		return false
	})
	return guest
}

// TestRestartLine: a shim spawned with restart_in_place asks on its restart
// line when its guest ends; the handle reports the question and the new
// guest, and answers it. Once the handle is closed, the shim's next
// question finds nobody and it ends.
func TestRestartLine(t *testing.T) {
	t.Parallel()
	box := newBox(t, "line")
	spec := guestSpec("/bin/sleep", "30")
	spec.RestartInPlace = true
	spec.Detach = true // it outlives the handle below, which is closed first
	h := spawnBox(t, SpawnRequest{Box: box, Spec: spec, Cgroup: CgroupOff})
	if !h.RestartsInPlace() {
		t.Fatal("RestartsInPlace = false for a shim spawned with restart_in_place")
	}
	first := onlyGuest(t, h.PID(), 0)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ev, err := h.NextGuestEvent()
	if err != nil || ev.Exit == nil || ev.Exit.Signal != "SIGKILL" || ev.Exit.Source != messages.SourceShim {
		t.Fatalf("NextGuestEvent = %+v, %v; want the guest's SIGKILL from the shim", ev, err)
	}
	if err := h.AnswerGuest(true); err != nil {
		t.Fatal(err)
	}
	ev, err = h.NextGuestEvent()
	if err != nil || ev.StartedPID == 0 || ev.StartedPID == first {
		t.Fatalf("NextGuestEvent = %+v, %v; want a new guest", ev, err)
	}
	if got := onlyGuest(t, h.PID(), first); got != ev.StartedPID {
		t.Errorf("the shim's child is %d, the report says %d", got, ev.StartedPID)
	}

	// Adopting the running shim gives no line: the adopter cannot answer.
	adopted, err := Adopt(box, h.Identity(), AdoptOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if adopted.RestartsInPlace() {
		t.Error("an adopted handle claims a restart line")
	}
	if _, err := adopted.NextGuestEvent(); err != io.EOF {
		t.Errorf("NextGuestEvent of an adopted handle = %v, want io.EOF", err)
	}

	// The spawning handle lets go: the shim ends at its guest's next end.
	_ = h.Close()
	if err := syscall.Kill(ev.StartedPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExited(t, adopted, 10*time.Second)
	if ex := adopted.ExitStatus(); ex.Signal != "SIGKILL" {
		t.Errorf("exit of the shim without a line = %+v, want its guest's SIGKILL", ex)
	}
	_ = adopted.Close()
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(h.PID(), &ws, 0, nil) // our child, left unreaped by the closed handle
}
