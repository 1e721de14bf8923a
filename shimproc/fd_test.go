package shimproc

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// spawnCycle spawns a box, stops it and releases everything.
func spawnCycle(t *testing.T, id string, detach bool, during func()) {
	t.Helper()
	box := newBox(t, id)
	spec := guestSpec("/bin/sleep", "30")
	spec.Detach = detach
	h, err := Spawn(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: spec, CgroupParent: testCgroupParent(t)})
	if err != nil {
		t.Fatal(err)
	}
	during()
	if err := h.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExited(t, h, 10*time.Second)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.RemoveCgroup(); err != nil {
		t.Fatal(err)
	}
}

func TestNoFDLeak(t *testing.T) {
	spawnCycle(t, "warmup", false, func() {}) // let lazy runtime fds (epoll) open first
	before := openFDs(t)

	// A ready, attached box: the pidfd and the keepalive write end.
	spawnCycle(t, "attached", false, func() {
		if got := openFDs(t); got != before+2 {
			t.Errorf("open fds with one attached box: %d, want %d (pidfd + keepalive)", got, before+2)
		}
	})
	// A ready, detached box: the pidfd alone.
	spawnCycle(t, "detached", true, func() {
		if got := openFDs(t); got != before+1 {
			t.Errorf("open fds with one detached box: %d, want %d (pidfd)", got, before+1)
		}
	})
	// Started, not yet ready: the ready pipe's read end too.
	box := newBox(t, "starting")
	h, err := Start(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: guestSpec("/bin/sleep", "30"), Cgroup: CgroupOff})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.waitHandOver(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := openFDs(t); got != before+3 {
		t.Errorf("open fds after Start and the spec's hand-over: %d, want %d (pidfd + ready + keepalive)", got, before+3)
	}
	if err := h.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := openFDs(t); got != before+2 {
		t.Errorf("open fds after WaitReady: %d, want %d", got, before+2)
	}
	cleanupHandle(t, h)

	if got := openFDs(t); got != before {
		t.Errorf("open fds after the cycles: %d, want %d", got, before)
	}
}
