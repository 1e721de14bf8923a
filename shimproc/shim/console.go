package shim

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/boxsup/boxsup/messages"
)

// The console's record format (docs/SHIM-PROTOCOL.md, "Logs"), the CRI log
// format of containerd, CRI-O and conmon:
//
//	<time> <stream> <P|F> <text>\n
//
// time is RFC 3339 in UTC with nine fractional digits (fixed width, so that
// records sort as text); stream is stdout or stderr; F ends a line of the
// guest (its newline is the record's), P is a part of a line that the next
// record of the same stream continues.
const consoleTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Sizes of the console copier. They bound the shim's memory, whatever the
// guest writes: one read buffer per stream, and formatted records written
// in batches of about consoleFlushSize.
const (
	// consoleReadSize is the most a record's text holds: a longer line is
	// split into P records (containerd splits at 16 KiB too).
	consoleReadSize = 16 << 10
	// consoleFlushSize is the batch of formatted records per write(2).
	consoleFlushSize = 32 << 10
	// drainFallback bounds the drain at the guest's exit when the pipe's
	// capacity cannot be read (F_GETPIPE_SZ).
	drainFallback = 1 << 20
)

// console carries the guest's stdout and stderr into console_output. Each
// stream is a pipe whose read end a goroutine reads through the runtime's
// poller (no OS thread of its own); every read is written to the rotating
// log as records before the next read, so the shim holds no guest output
// beyond one read.
//
// When the shim falls behind, the pipe fills and the guest blocks in
// write(2) until the shim catches up, as under conmon: output is never
// dropped for speed. It is dropped only when the log cannot be written
// (disk full, rotation refused), so that a full disk never blocks the guest;
// shim.log says how much.
//
// With an empty console_output there is no console: the guest writes
// straight to the shim's stderr, unformatted and uncapped (a shim run by
// hand on a terminal).
type console struct {
	log     *rotatingLog // nil: passthrough to the shim's stderr
	logf    func(format string, args ...any)
	streams []*consoleStream
	// guestEnds are the pipes' write ends for the guest; the shim closes
	// its copies once the guest holds them (started), so that the read
	// ends see EOF when the guest and its children are gone.
	guestStdout, guestStderr *os.File

	finishOnce sync.Once
	// beforeRead, a test hook, runs in a copier before each read.
	beforeRead func(stream string)

	mu      sync.Mutex // guards failing and dropped
	failing bool       // the last write failed
	dropped int64      // bytes of records not written since failing
}

// consoleStream is one of the guest's streams.
type consoleStream struct {
	name      string   // "stdout" or "stderr": the record's stream field
	r         *os.File // the pipe's read end, non-blocking, in the poller
	finishing atomic.Bool
	done      chan struct{} // closed when the copier has returned
}

// openConsole opens spec.console_output as a rotating log and starts the
// copiers; the guest gets guestStdout and guestStderr.
func openConsole(spec *messages.InstanceSpec, logf func(format string, args ...any)) (*console, error) {
	return newConsole(spec, logf, nil)
}

// newConsole is openConsole with a test hook.
func newConsole(spec *messages.InstanceSpec, logf func(format string, args ...any), beforeRead func(stream string)) (*console, error) {
	if spec.ConsoleOutput == "" {
		return &console{logf: logf, guestStdout: os.Stderr, guestStderr: os.Stderr}, nil
	}
	log, err := openRotatingLog(spec.ConsoleOutput, spec.ConsoleLog.WithDefaults(messages.DefaultConsoleLogMaxBytes, messages.DefaultConsoleLogMaxFiles))
	if err != nil {
		return nil, err
	}
	c := &console{log: log, logf: logf, beforeRead: beforeRead}
	for _, name := range []string{"stdout", "stderr"} {
		// os.Pipe puts both ends in the poller (non-blocking). The write
		// end goes back to blocking mode when os/exec hands it to the
		// guest (File.Fd), so the guest sees an ordinary blocking pipe.
		r, w, err := os.Pipe()
		if err != nil {
			c.finish()
			return nil, err
		}
		if name == "stdout" {
			c.guestStdout = w
		} else {
			c.guestStderr = w
		}
		s := &consoleStream{name: name, r: r, done: make(chan struct{})}
		c.streams = append(c.streams, s)
		go c.copy(s)
	}
	return c, nil
}

// started closes the shim's copies of the guest's ends, once the guest has
// its own (or will never run).
func (c *console) started() {
	if c.log == nil {
		return // passthrough: the shim's own stderr stays open
	}
	for _, f := range []**os.File{&c.guestStdout, &c.guestStderr} {
		if *f != nil {
			_ = (*f).Close()
			*f = nil
		}
	}
}

// finish drains what the guest left in the pipes, stops the copiers and
// closes the log. Call it once the guest has been reaped and its leftovers
// swept: everything the guest wrote is then in the pipes, and it is all
// written before finish returns (the exit record comes after). Only the
// first call has an effect.
func (c *console) finish() {
	c.finishOnce.Do(c.finishNow)
}

func (c *console) finishNow() {
	c.beginFinish()
	for _, s := range c.streams {
		<-s.done
		_ = s.r.Close()
	}
	if c.log != nil {
		c.log.close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		c.logf("console: %d bytes of the guest's output were dropped because console_output could not be written", c.dropped)
	}
}

// beginFinish tells the copiers to drain and stop: a parked read wakes, a
// read to come fails at once, and no data is lost either way. Only the first
// call sets the deadline: the drain clears it to read what is left, and a
// second deadline set meanwhile would cut the drain short (finish after an
// explicit beginFinish did, rarely, in TestConsoleFinishDrainsThePipe).
func (c *console) beginFinish() {
	c.started()
	for _, s := range c.streams {
		if s.finishing.Swap(true) {
			continue
		}
		_ = s.r.SetReadDeadline(time.Now())
	}
}

// copy reads one stream until EOF (every writer closed it) or finish.
func (c *console) copy(s *consoleStream) {
	defer close(s.done)
	// The buffer is allocated once the guest first writes: a quiet guest
	// costs no buffer (it saves about 25 KiB of an idle shim's PSS, since
	// the allocator zeroes reused memory).
	if !awaitData(s.r) && !s.finishing.Load() {
		return // closed
	}
	buf := make([]byte, consoleReadSize)
	var out []byte
	for {
		if c.beforeRead != nil {
			c.beforeRead(s.name)
		}
		n, err := s.r.Read(buf)
		if n > 0 {
			out = c.record(out, s.name, buf[:n])
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && s.finishing.Load():
			c.drain(s, buf, out)
			return
		default:
			return // EOF: the guest and every process that inherited the stream closed it
		}
	}
}

// drain reads what is in the pipe now, without waiting for EOF: a process
// that escaped the box's sweep may hold the write end open for ever. It
// reads at most the pipe's capacity, all that the dead guest can have left
// there, so that such a process cannot keep the shim draining either.
func (c *console) drain(s *consoleStream, buf, out []byte) {
	if err := s.r.SetReadDeadline(time.Time{}); err != nil {
		return
	}
	limit := pipeCapacity(s.r)
	for read := 0; read < limit; {
		avail := bytesBuffered(s.r)
		if avail <= 0 {
			return
		}
		n, err := s.r.Read(buf[:min(avail, len(buf), limit-read)])
		if n > 0 {
			out = c.record(out, s.name, buf[:n])
			read += n
		}
		if err != nil {
			return
		}
	}
}

// record writes chunk, read from stream just now, as records: an F record
// per complete line, a P record for a trailing part without a newline. out
// is a reusable buffer; record returns it emptied.
func (c *console) record(out []byte, stream string, chunk []byte) []byte {
	var stampBuf [len(consoleTimeLayout)]byte
	stamp := time.Now().UTC().AppendFormat(stampBuf[:0], consoleTimeLayout)
	for len(chunk) > 0 {
		line, partial := chunk, true
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			line, partial, chunk = chunk[:i], false, chunk[i+1:]
		} else {
			chunk = nil
		}
		out = appendRecord(out, stamp, stream, partial, line)
		if len(out) >= consoleFlushSize {
			c.write(out)
			out = out[:0]
		}
	}
	if len(out) > 0 {
		c.write(out)
	}
	return out[:0]
}

// appendRecord appends one record to dst.
func appendRecord(dst, stamp []byte, stream string, partial bool, text []byte) []byte {
	tag := byte('F')
	if partial {
		tag = 'P'
	}
	dst = append(dst, stamp...)
	dst = append(dst, ' ')
	dst = append(dst, stream...)
	dst = append(dst, ' ', tag, ' ')
	dst = append(dst, text...)
	return append(dst, '\n')
}

// write appends records to the log. A failure drops them (the guest must
// not block on a full disk) and is reported once in shim.log, with the
// amount dropped when writing works again.
func (c *console) write(records []byte) {
	err := c.log.write(records)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil && !c.failing:
		c.failing = true
		c.dropped += int64(len(records))
		c.logf("console: %v; dropping the guest's output until console_output can be written again", err)
	case err != nil:
		c.dropped += int64(len(records))
	case c.failing:
		c.failing = false
		c.logf("console: writing again after dropping %d bytes", c.dropped)
		c.dropped = 0
	}
}

// awaitData parks until the pipe holds data, without reading and without a
// buffer. It returns false when the wait ended otherwise: finish's
// deadline, or the file closed. EOF alone does not end it (nothing more can
// be read then; finish ends the wait).
func awaitData(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return true // let the read find out
	}
	// RawConn.Read calls the function, and while it returns false waits
	// for the poller to report the pipe readable and calls it again. It
	// looks at the pipe after arming the wait, so data that arrived first
	// is seen rather than waited for.
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ)
		return err != nil || n > 0
	})
	return err == nil
}

// pipeCapacity returns the pipe's capacity (F_GETPIPE_SZ).
func pipeCapacity(f *os.File) int {
	n := drainFallback
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if v, err := unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0); err == nil && v > 0 {
				n = v
			}
		})
	}
	return n
}

// bytesBuffered returns how many bytes the pipe holds now (FIONREAD, alias
// TIOCINQ), 0 on
// an error.
func bytesBuffered(f *os.File) int {
	n := 0
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if v, err := unix.IoctlGetInt(int(fd), unix.TIOCINQ); err == nil {
				n = v
			}
		})
	}
	return n
}
