package shimproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boxsup/boxsup/layout"
)

func TestHandleConcurrentUse(t *testing.T) {
	box := newBox(t, "busyhandle")
	h := spawnBox(t, SpawnRequest{Box: box, Spec: guestSpec("/bin/sleep", "30"), CgroupParent: testCgroupParent(t)})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var taken []*os.File
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				_, _ = h.Metrics()
				_ = h.ExitStatus()
				_ = h.Identity()
				if f := h.TakeKeepalive(); f != nil { // one goroutine wins it
					mu.Lock()
					taken = append(taken, f)
					mu.Unlock()
				}
				if i == 0 {
					_ = h.Signal(syscall.SIGWINCH) // relayed to the guest, which ignores it
				}
			}
		})
	}
	wg.Go(func() {
		time.Sleep(5 * time.Millisecond)
		_ = h.KillTree()
	})
	wg.Wait()
	if len(taken) != 1 {
		t.Errorf("TakeKeepalive handed out %d keepalives, want exactly 1", len(taken))
	}
	for _, f := range taken {
		_ = f.Close()
	}
	waitExited(t, h, 10*time.Second)
	var errs []error
	for range 3 {
		errs = append(errs, h.Close())
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestCloseDuringWaitReady(t *testing.T) {
	box := newBox(t, "closing")
	dir, err := layout.SocketDir(box.SocketsDir(), "ready.sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = layout.RemoveSocketDir(box.SocketsDir()) })
	spec := guestSpec("/bin/sleep", "30")
	spec.ReadyTransport = filepath.Join(dir, "ready.sock")
	h, err := Start(context.Background(), SpawnRequest{Box: box, Binary: shimBinary, Spec: spec, Cgroup: CgroupOff})
	if err != nil {
		t.Fatal(err)
	}
	second := watchSecondHandle(t, h) // reaps the shim once the keepalive drop stops it

	done := make(chan error, 1)
	go func() { done <- h.WaitReady(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // let WaitReady block (either order is handled)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errHandleClosed) {
			t.Errorf("WaitReady after Close = %v, want the handle-closed error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitReady did not return after Close")
	}
	if err := h.Signal(syscall.SIGTERM); !errors.Is(err, errHandleClosed) {
		t.Errorf("Signal after Close = %v", err)
	}
	if err := h.KillTree(); !errors.Is(err, errHandleClosed) {
		t.Errorf("KillTree after Close = %v", err)
	}
	waitExited(t, second, 10*time.Second) // the dropped keepalive stopped it
}
