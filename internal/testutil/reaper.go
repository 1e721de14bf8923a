package testutil

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// reapPollInterval is how often ReapChildren, with no child left, looks
// again for orphans to reap.
const reapPollInterval = 10 * time.Millisecond

// BecomeSubreaper makes this process a child subreaper: orphans of its
// descendants become its children (this machine's PID 1 reaps nobody).
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// ReapChildren reaps, on a goroutine of its own for the rest of the
// process's life, every child that ends, so that none stays a zombie. It
// is for a test's helper process, which the test kills when done.
func ReapChildren() {
	go func() {
		for {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(-1, &ws, 0, nil); errors.Is(err, unix.ECHILD) {
				time.Sleep(reapPollInterval)
			}
		}
	}()
}
