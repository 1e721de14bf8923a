package actors

import (
	"testing"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// heldWriter is a persister whose writes wait until the test lets them go.
func heldWriter(t *testing.T) (*persister, layout.Box, chan struct{}, chan struct{}) {
	t.Helper()
	home, err := layout.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	box, err := home.Box("disk")
	if err != nil {
		t.Fatal(err)
	}
	if err := box.Create(); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}, 16), make(chan struct{})
	p := newPersister(box, func(f func()) {
		entered <- struct{}{}
		<-release
		f()
	})
	return p, box, entered, release
}

// TestPersisterCloseWritesThePendingRecord: a record submitted while an
// earlier write is in flight is still written when the writer is closed at
// shutdown (it was given up, and Shutdown reported the box's last state
// lost, when the shutdown came right behind a transition).
func TestPersisterCloseWritesThePendingRecord(t *testing.T) {
	t.Parallel()
	p, box, entered, release := heldWriter(t)
	p.submit(1, 1, messages.StateRecord{ID: "disk", State: messages.StateRunning})
	<-entered // the first write is in flight
	p.submit(1, 2, messages.StateRecord{ID: "disk", State: messages.StateFailed, Reason: "last words"})
	lost := make(chan bool, 1)
	go func() { lost <- p.close() }()
	eventually(t, "the writer to be closed", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.closed
	})
	close(release)
	if <-lost {
		t.Errorf("close reported the last record lost; the disk took every write")
	}
	rec, err := box.ReadState()
	if err != nil || rec.State != messages.StateFailed || rec.Reason != "last words" {
		t.Errorf("state.json after close: %+v, %v; want the last record submitted", rec, err)
	}
}

// TestPersisterDropWritesNothingMore: a removed box's writer stops without
// writing what was pending: its directory is gone.
func TestPersisterDropWritesNothingMore(t *testing.T) {
	t.Parallel()
	p, box, entered, release := heldWriter(t)
	p.submit(1, 1, messages.StateRecord{ID: "disk", State: messages.StateExited})
	<-entered
	p.submit(1, 2, messages.StateRecord{ID: "disk", State: messages.StateRunning})
	done := make(chan struct{})
	go func() { p.drop(); close(done) }()
	eventually(t, "the writer to be closed", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.closed
	})
	close(release)
	<-done
	rec, err := box.ReadState()
	if err != nil || rec.State != messages.StateExited {
		t.Errorf("state.json after drop: %+v, %v; want only the write in flight", rec, err)
	}
}

// TestPersisterCloseTriesOnceMoreAfterAFailure: a record whose write failed
// (and waits for its retry) gets one more attempt at close, which lands it
// when the cause has passed (a process short of file descriptors that
// raised its limit), instead of being given up.
func TestPersisterCloseTriesOnceMoreAfterAFailure(t *testing.T) {
	t.Parallel()
	home, err := layout.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	box, err := home.Box("disk") // not created yet: a write fails
	if err != nil {
		t.Fatal(err)
	}
	attempts := make(chan error, 16)
	p := newPersister(box, func(f func()) { f(); attempts <- nil })
	p.submit(1, 1, messages.StateRecord{ID: "disk", State: messages.StateRunning})
	<-attempts // the write failed: the writer waits to retry
	if err := box.Create(); err != nil {
		t.Fatal(err)
	}
	if p.close() {
		t.Errorf("close reported the record lost; its last attempt could land it")
	}
	if rec, err := box.ReadState(); err != nil || rec.State != messages.StateRunning {
		t.Errorf("state.json after close: %+v, %v", rec, err)
	}
}
