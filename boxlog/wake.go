package boxlog

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pollInterval is how often a follower looks at the log when inotify is not
// available (the per-user limit of inotify instances, 128 by default, is
// reached). Polling a file is the fallback, never the rule.
const pollInterval = 100 * time.Millisecond

// watchMask is what the follower is woken for: the log written to, or a
// file of it created, renamed or removed (a rotation); the directory itself
// removed or moved (the box was removed).
const watchMask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// waker tells a follower that the log may have changed. It watches the
// directory with inotify, read through the runtime's poller (no thread of
// its own), and falls back to a ticker.
type waker struct {
	c      chan struct{} // a value: look again (capacity 1: wakes merge)
	inotif *os.File      // nil when polling
	ticker *time.Ticker  // nil with inotify
	done   chan struct{} // closed when the inotify reader returned
	once   sync.Once
}

// newWaker starts watching d. It never fails: without inotify (or when
// poll is set, for tests) it polls.
func newWaker(d *logDir, poll bool) *waker {
	w := &waker{c: make(chan struct{}, 1)}
	fd, err := -1, error(unix.ENOSYS)
	if !poll {
		fd, err = unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	}
	if err == nil {
		// Through the descriptor, so that the watch is on the directory
		// the reader opened, wherever its path leads now.
		if _, err = unix.InotifyAddWatch(fd, "/proc/self/fd/"+strconv.Itoa(d.fd()), watchMask); err != nil {
			_ = unix.Close(fd)
		}
	}
	if err != nil {
		w.ticker = time.NewTicker(pollInterval)
		return w
	}
	w.inotif = os.NewFile(uintptr(fd), "inotify")
	w.done = make(chan struct{})
	go w.read(d.base)
	return w
}

// wake returns the channel to wait on.
func (w *waker) wake() <-chan struct{} { return w.c }

// tick returns the polling ticker's channel, nil with inotify.
func (w *waker) tick() <-chan time.Time {
	if w.ticker == nil {
		return nil
	}
	return w.ticker.C
}

// read turns inotify events about the log into wakes until close.
func (w *waker) read(base string) {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		n, err := w.inotif.Read(buf)
		if err != nil {
			return // closed
		}
		if concernsLog(buf[:n], base) {
			select {
			case w.c <- struct{}{}:
			default:
			}
		}
	}
}

// concernsLog reports whether any of the events names base or one of its
// rotated files, or is about the watch itself (overflow, directory gone).
func concernsLog(events []byte, base string) bool {
	for len(events) >= unix.SizeofInotifyEvent {
		// struct inotify_event: wd int32, mask, cookie, len uint32, name.
		mask := binary.NativeEndian.Uint32(events[4:8])
		size := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(events[12:16]))
		if size > len(events) {
			return true // cannot happen; look anyway
		}
		if mask&(unix.IN_Q_OVERFLOW|unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
			return true
		}
		name := events[unix.SizeofInotifyEvent:size]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if string(name) == base || bytes.HasPrefix(name, []byte(base+".")) {
			return true
		}
		events = events[size:]
	}
	return false
}

// close stops watching.
func (w *waker) close() {
	w.once.Do(func() {
		if w.ticker != nil {
			w.ticker.Stop()
			return
		}
		_ = w.inotif.Close()
		<-w.done
	})
}
