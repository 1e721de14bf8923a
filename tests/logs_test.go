package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/messages"
)

// TestLogsAcrossASupervisorRestart: Logs reads files only, so the next
// supervisor follows a detached box that the previous one started, across
// the console's rotations, without losing or repeating a line, and the
// follow ends when the box comes to rest.
func TestLogsAcrossASupervisorRestart(t *testing.T) {
	checkGoroutines(t)
	home := t.TempDir()
	gate := filepath.Join(t.TempDir(), "gate")
	first := startHarness(t, home)
	// About 130 KiB of records before the gate (two rotations of 64 KiB
	// files, all kept), 90 KiB after it.
	spec := first.spec("/bin/sh", "-c", fmt.Sprintf("seq 1 3000; while [ ! -e %s ]; do sleep 0.01; done; seq 3001 5000; exec sleep 300", gate))
	spec.Detach = true
	spec.ConsoleLog = messages.LogRotation{MaxBytes: messages.MinLogMaxBytes, MaxFiles: 3}
	first.start(messages.StartBox{ID: "chatty", Spec: spec})
	eventually(t, "the first 3000 lines in the console", func() (bool, string) {
		last := readLogs(t, first.sup, "chatty", actors.LogOptions{Tail: 1})
		return last == "3000\n", last
	})
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := first.sup.Shutdown(ctx, actors.LeaveRunning); err != nil {
		t.Fatalf("Shutdown(LeaveRunning): %v", err)
	}

	second := startHarness(t, home)
	r, err := second.sup.Logs(second.ctx(), "chatty", actors.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stopped := make(chan error, 1)
	sc := bufio.NewScanner(r)
	want := 1
	for sc.Scan() {
		if got := sc.Text(); got != strconv.Itoa(want) {
			t.Fatalf("line %q, want %d", got, want)
		}
		switch want {
		case 3000:
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		case 5000:
			go func() {
				_, err := second.sup.Stop(second.ctx(), "chatty", 0)
				stopped <- err
			}()
		}
		want++
	}
	if err := sc.Err(); err != nil || want != 5001 {
		t.Fatalf("follow ended after line %d: %v", want-1, err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(home, "boxes", "chatty", "console.log*")); len(files) != 3 {
		t.Errorf("console files %v: the console did not rotate as the test intends", files)
	}
	if got := readLogs(t, second.sup, "chatty", actors.LogOptions{Tail: 2, Stream: boxlog.Stdout}); got != "4999\n5000\n" {
		t.Errorf("tail 2 after the stop: %q", got)
	}
}

// TestLogsRefusals: an unknown box is ErrNotFound, a bad option ErrBadSpec.
func TestLogsRefusals(t *testing.T) {
	h := newHarness(t)
	if _, err := h.sup.Logs(h.ctx(), "nobody", actors.LogOptions{}); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("unknown box: %v", err)
	}
	h.startSleeper("quiet")
	if _, err := h.sup.Logs(h.ctx(), "quiet", actors.LogOptions{Stream: "stdin"}); !errors.Is(err, messages.ErrBadSpec) {
		t.Errorf("bad stream: %v", err)
	}
	r, err := h.sup.Logs(h.ctx(), "quiet", actors.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // a follower closed while the box runs
		t.Errorf("Close: %v", err)
	}
}

// readLogs returns what Logs gives, failing the test on an error.
func readLogs(t *testing.T, sup *actors.Supervisor, id string, opts actors.LogOptions) string {
	t.Helper()
	r, err := sup.Logs(context.Background(), id, opts)
	if err != nil {
		t.Fatalf("Logs(%s): %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading Logs(%s): %v", id, err)
	}
	return string(b)
}
