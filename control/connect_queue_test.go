package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/boxsup/boxsup/actors"
)

// TestConnectQueuesWithANoticeAfterASecond: a command that finds the home
// held by a process that serves nobody queues for the lock (up to its own
// bound, not 5 s), says why once after a second, and goes on as soon as the
// holder lets go.
func TestConnectQueuesWithANoticeAfterASecond(t *testing.T) {
	cfg := testConfig(t)
	holder, err := actors.NewSupervisor(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, holder) }) // a second Shutdown does nothing
	notices := make(chan string, 2)
	type result struct {
		b   Backend
		err error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		b, err := Connect(ctxFor(t), holder.Home(), ConnectOptions{Config: cfg, LockWait: time.Minute,
			Notice: func(msg string) { notices <- msg }})
		done <- result{b, err}
	}()
	var notice string
	select {
	case notice = <-notices:
	case r := <-done:
		t.Fatalf("Connect returned while the home was held: %v", r.err)
	case <-time.After(waitDeadline):
		t.Fatal("no notice while queueing for a held home")
	}
	if waited := time.Since(began); waited < time.Second {
		t.Errorf("the notice came after %v; want it after a second of waiting", waited)
	}
	if !strings.Contains(notice, "waiting for the home") || !strings.Contains(notice, "for up to 1m0s") {
		t.Errorf("notice %q does not say what it waits for and how long", notice)
	}
	shutdown(t, holder)
	r := <-done
	if r.err != nil {
		t.Fatalf("Connect once the holder let go: %v", r.err)
	}
	defer r.b.Close()
	if _, ok := unwrap(r.b).(*Local); !ok {
		t.Fatalf("got %T, want a Local of its own", unwrap(r.b))
	}
	if len(notices) != 0 {
		t.Errorf("more than one notice: %q", <-notices)
	}
}
