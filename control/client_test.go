package control

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TestASilentServerIsATimeoutNotAHang: a listener that accepts connections
// and never answers (what a supervisor stopped with SIGSTOP looks like from
// outside: the kernel still accepts) gives ErrTimeout, naming the pid, after
// DefaultRequestTimeout instead of hanging the command.
func TestASilentServerIsATimeoutNotAHang(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "silent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never read or answered
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 4*DefaultRequestTimeout)
	defer cancel()
	began := time.Now()
	_, err = Dial(ctx, path)
	if !errors.Is(err, messages.ErrTimeout) {
		t.Fatalf("Dial to a silent server: %v, want ErrTimeout", err)
	}
	if took := time.Since(began); took > 3*DefaultRequestTimeout {
		t.Errorf("Dial gave up after %v; the bound is %v", took, DefaultRequestTimeout)
	}
	t.Logf("error after %v: %v", time.Since(began).Round(time.Millisecond), err)
}

// TestRequestDeadlines: queries get the default bound; stop and start get
// their own bound plus the margin; wait has none.
func TestRequestDeadlines(t *testing.T) {
	t.Parallel()
	c := &Client{specOf: func(string) (messages.StartBox, error) {
		return messages.StartBox{StopTimeout: time.Minute, ReadyTimeout: 2 * time.Minute}, nil
	}}
	for _, tc := range []struct {
		req  Request
		want time.Duration
	}{
		{Request{Op: OpList}, DefaultRequestTimeout},
		{Request{Op: OpStatus, ID: "a"}, DefaultRequestTimeout},
		{Request{Op: OpStop, ID: "a", Timeout: 3 * time.Second}, 3*time.Second + requestMargin},
		{Request{Op: OpStop, ID: "a"}, time.Minute + requestMargin},
		{Request{Op: OpRemove, ID: "a", Force: true}, time.Minute + requestMargin},
		{Request{Op: OpStart, Start: &messages.StartBox{ReadyTimeout: 7 * time.Second}}, 7*time.Second + requestMargin},
		{Request{Op: OpStart, Start: &messages.StartBox{}}, messages.DefaultReadyTimeout + requestMargin},
		{Request{Op: OpStartAgain, ID: "a"}, 2*time.Minute + requestMargin},
		{Request{Op: OpWait, ID: "a"}, 0},
	} {
		if got := c.deadline(&tc.req); got != tc.want {
			t.Errorf("%s: deadline %v, want %v", tc.req.Op, got, tc.want)
		}
	}
}
