package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procEvent is an exec of the benchmark's sleep binary, or the exit of a
// followed process, at a time on CLOCK_MONOTONIC (nanoseconds).
type procEvent struct {
	pid int
	at  int64
}

// procWatch tells when sleep children start and when followed processes
// end, for every supervisor alike. With CAP_NET_ADMIN it listens to the
// kernel's process events (the proc connector): each exec and exit arrives
// with the kernel's own timestamp, so neither polling nor the benchmark's
// scheduling delays enter the figures. Without it, it walks this process's
// tree of descendants every pollInterval and timestamps what it finds.
type procWatch struct {
	sleepExe string
	// method says how events are seen, for the report.
	method string

	mu     sync.Mutex
	execs  []procEvent
	follow map[int]bool
	exits  map[int]int64
	lost   bool // the kernel dropped events (socket buffer full)
	wake   chan struct{}

	stop func()
}

// pollInterval paces the fallback walk of the process tree.
const pollInterval = 5 * time.Millisecond

// newProcWatch starts watching; close stops it.
func newProcWatch(sleepExe string) *procWatch {
	w := &procWatch{sleepExe: sleepExe, follow: map[int]bool{}, exits: map[int]int64{}, wake: make(chan struct{}, 1)}
	if err := w.startConnector(); err != nil {
		w.method = fmt.Sprintf("a walk of the benchmark's process tree every %v (the kernel's process events need CAP_NET_ADMIN: %v); times are when the walk saw the change", pollInterval, err)
		w.startPolling()
	} else {
		w.method = "the kernel's process events (proc connector): an exec of sleep and an exit carry the kernel's timestamp"
	}
	return w
}

func (w *procWatch) close() { w.stop() }

// reset forgets the execs seen so far and every followed process.
func (w *procWatch) reset() {
	w.mu.Lock()
	w.execs = nil
	w.follow = map[int]bool{}
	w.exits = map[int]int64{}
	w.lost = false
	w.mu.Unlock()
}

// followExits records from now on when any of pids exits.
func (w *procWatch) followExits(pids []int) {
	w.mu.Lock()
	for _, p := range pids {
		w.follow[p] = true
	}
	w.mu.Unlock()
}

// execsSince returns the sleep execs at or after t.
func (w *procWatch) execsSince(t int64) []procEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []procEvent
	for _, e := range w.execs {
		if e.at >= t {
			out = append(out, e)
		}
	}
	return out
}

// exitOf returns when pid was seen to exit.
func (w *procWatch) exitOf(pid int) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.exits[pid]
	return at, ok
}

// droppedEvents reports whether events may have been lost since reset.
func (w *procWatch) droppedEvents() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lost
}

// wait blocks until something new was seen or d passed.
func (w *procWatch) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.wake:
	case <-t.C:
	}
}

func (w *procWatch) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *procWatch) sawExec(pid int, at int64) {
	w.mu.Lock()
	w.execs = append(w.execs, procEvent{pid: pid, at: at})
	w.mu.Unlock()
	w.notify()
}

func (w *procWatch) sawExit(pid int, at int64) {
	w.mu.Lock()
	hit := w.follow[pid]
	if hit {
		if _, dup := w.exits[pid]; !dup {
			w.exits[pid] = at
		}
	}
	w.mu.Unlock()
	if hit {
		w.notify()
	}
}

// The proc connector's wire format (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc       = 1
	cnValProc       = 1
	procCnListen    = 1
	procCnIgnore    = 2
	procEventExec   = 0x00000002
	procEventExit   = 0x80000000
	cnMsgLen        = 20 // struct cn_msg without data
	procEventHeader = 16 // what, cpu, timestamp_ns
)

// startConnector subscribes to the kernel's process events.
func (w *procWatch) startConnector() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return err
	}
	// A start storm of 1000 execs (and every other exec on the machine)
	// must fit until the reader drains it.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 32<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return err
	}
	if err := sendProcCnOp(fd, procCnListen); err != nil {
		unix.Close(fd)
		return err
	}
	f := os.NewFile(uintptr(fd), "proc-connector")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.readConnector(rc)
	}()
	w.stop = func() {
		// Tell the kernel nobody listens any more (it counts listeners and
		// stops building events at zero), then end the reader.
		_ = rc.Control(func(fd uintptr) { _ = sendProcCnOp(int(fd), procCnIgnore) })
		_ = f.Close()
		<-done
	}
	return nil
}

// sendProcCnOp sends PROC_CN_MCAST_LISTEN or _IGNORE to the kernel.
func sendProcCnOp(fd int, op uint32) error {
	msg := make([]byte, unix.NLMSG_HDRLEN+cnMsgLen+4)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], unix.NLMSG_DONE)
	ne.PutUint32(msg[12:], uint32(os.Getpid()))
	cn := msg[unix.NLMSG_HDRLEN:]
	ne.PutUint32(cn[0:], cnIdxProc)
	ne.PutUint32(cn[4:], cnValProc)
	ne.PutUint16(cn[16:], 4)
	ne.PutUint32(cn[cnMsgLen:], op)
	return unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// readConnector parses events until the socket is closed. An exec is kept
// when the new program is the sleep binary; an exit when its PID is
// followed.
func (w *procWatch) readConnector(rc syscall.RawConn) {
	buf := make([]byte, 256<<10)
	ne := binary.NativeEndian
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			if errors.Is(rerr, unix.ENOBUFS) {
				w.mu.Lock()
				w.lost = true
				w.mu.Unlock()
				w.notify()
			}
			continue
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			d := m.Data
			if len(d) < cnMsgLen+procEventHeader+8 {
				continue
			}
			ev := d[cnMsgLen:]
			what := ne.Uint32(ev[0:])
			at := int64(ne.Uint64(ev[8:]))
			pid := int(ne.Uint32(ev[procEventHeader:]))
			tgid := int(ne.Uint32(ev[procEventHeader+4:]))
			switch what {
			case procEventExec:
				if exe, err := os.Readlink("/proc/" + strconv.Itoa(tgid) + "/exe"); err == nil && exe == w.sleepExe {
					w.sawExec(tgid, at)
				}
			case procEventExit:
				if pid == tgid {
					w.sawExit(tgid, at)
				}
			}
		}
	}
}

// startPolling is the fallback: a walk of this process's descendants.
func (w *procWatch) startPolling() {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		seen := map[int]bool{}
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			now := monoNow()
			alive := map[int]bool{}
			for _, pid := range descendants(os.Getpid()) {
				alive[pid] = true
				if seen[pid] {
					continue
				}
				if exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); err == nil {
					if exe == w.sleepExe {
						seen[pid] = true
						w.sawExec(pid, now)
					}
				}
			}
			w.mu.Lock()
			var gone []int
			for pid := range w.follow {
				if _, done := w.exits[pid]; !done && !alive[pid] {
					gone = append(gone, pid)
				}
			}
			w.mu.Unlock()
			for _, pid := range gone {
				w.sawExit(pid, now)
			}
			for pid := range seen {
				if !alive[pid] {
					delete(seen, pid)
				}
			}
		}
	}()
	w.stop = func() {
		close(quit)
		<-done
	}
}
