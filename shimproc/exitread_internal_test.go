package shimproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/layout"
	"github.com/boxsup/boxsup/messages"
)

// TestExitRecordReadAgainAfterATransientError (found by an operator: with
// the supervisor out of descriptors, a guest's SIGKILL was reported as
// "exit 137, no exit record"): EMFILE is tried again; a lasting error is
// not.
func TestExitRecordReadAgainAfterATransientError(t *testing.T) {
	t.Parallel()
	want := messages.ExitRecord{ExitCode: 137, Signal: "SIGKILL", FinishedAt: time.Now().UTC()}
	emfile := fmt.Errorf("read exit record: %w", &os.PathError{Op: "open", Path: "exit.json", Err: syscall.EMFILE})
	log := logrus.New()
	log.SetOutput(io.Discard)
	for _, tc := range []struct {
		name     string
		failures int
		err      error
		wantOK   bool
		reads    int
	}{
		{"EMFILE twice", 2, emfile, true, 3},
		{"EMFILE every time", 100, emfile, false, exitReadAttempts},
		{"a lasting error", 100, errors.New("corrupt"), false, 1},
	} {
		reads := 0
		h := &Handle{log: log, startedAt: time.Now().Add(-time.Second), readExit: func(layout.Box) (messages.ExitRecord, error) {
			reads++
			if reads <= tc.failures {
				return messages.ExitRecord{}, tc.err
			}
			return want, nil
		}}
		rec, ok := h.readThisRunsExitFile()
		if ok != tc.wantOK || reads != tc.reads || (ok && rec.Signal != "SIGKILL") {
			t.Errorf("%s: ok %v after %d reads (%+v); want ok %v after %d", tc.name, ok, reads, rec, tc.wantOK, tc.reads)
		}
	}
}
