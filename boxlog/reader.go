package boxlog

import (
	"bufio"
	"context"
	"errors"
	"io"
	"time"

	"github.com/boxsup/boxsup/messages"
)

// TailNone, as Options.Tail, shows none of the lines already in the log:
// with Follow, only what is written from now on.
const TailNone = -1

// Options select what Copy and Open return. The zero value is the whole log,
// both streams, without times, up to its current end.
type Options struct {
	// Follow keeps reading as the log grows, across rotations, until Ended
	// is closed or the context ends.
	Follow bool
	// Ended, with Follow, is closed by the caller once the box has come to
	// rest (its shim exited: everything it wrote is in the files). The
	// reader then reads to the end of the log and returns. nil follows
	// until the context ends. The reader learns nothing about the box by
	// itself: it reads files only.
	Ended <-chan struct{}
	// Tail, when positive, starts with the last Tail lines (of those that
	// Since and Stream select). 0 starts at the beginning; TailNone starts
	// at the end.
	Tail int
	// Since, when set, shows only the lines whose first record was read
	// by the shim at or after it.
	Since time.Time
	// Stream, when set, shows only that stream's lines.
	Stream Stream
	// Timestamps starts each line with its time as the shim recorded it
	// (RFC 3339 in UTC, nanoseconds) and a space.
	Timestamps bool
}

// check refuses options that cannot be honoured.
func (o Options) check() error {
	switch o.Stream {
	case "", Stdout, Stderr:
	default:
		return messages.Errorf(messages.ErrBadSpec, "log stream %q: want %q, %q or both", o.Stream, Stdout, Stderr)
	}
	if o.Tail < TailNone {
		return messages.Errorf(messages.ErrBadSpec, "log tail %d: want a number of lines, 0 for all, or TailNone", o.Tail)
	}
	return nil
}

// Copy writes the console log at path (a box's console.log; its rotated
// files are beside it) to w as opts select. It returns nil at the end of the
// log, or with Follow once Ended is closed and the log is read to its end;
// ctx.Err() when ctx ends first; messages.ErrNotFound when the directory is
// missing (a log that does not exist yet is empty). Output is buffered and
// flushed before every wait.
func Copy(ctx context.Context, w io.Writer, path string, opts Options) error {
	return copyLog(ctx, w, path, opts, hooks{})
}

// hooks let tests act at chosen points of a read.
type hooks struct {
	opened  func(attempt, index int) // in a snapshot's walk, after each index
	waiting func()                   // a follower is about to wait
	poll    bool                     // follow by polling, as without inotify
}

func copyLog(ctx context.Context, w io.Writer, path string, opts Options, h hooks) error {
	if err := opts.check(); err != nil {
		return err
	}
	d, err := openLogDir(path)
	if err != nil {
		return err
	}
	return copyFrom(ctx, w, d, opts, h)
}

// copyFrom reads the log in d, which it closes.
func copyFrom(ctx context.Context, w io.Writer, d *logDir, opts Options, h hooks) error {
	defer d.close()
	d.opened = h.opened
	r := &reader{ctx: ctx, d: d, opts: opts, hooks: h, w: bufio.NewWriterSize(w, 32<<10), buf: make([]byte, scanBufSize)}
	if opts.Follow {
		// Before the first look, so that no change after it is missed.
		r.wake = newWaker(d, h.poll)
		defer r.wake.close()
	}
	err := r.run()
	if r.cur != nil {
		r.cur.file.close()
	}
	if ferr := r.w.Flush(); err == nil {
		err = ferr
	}
	return err
}

// logReader is the io.ReadCloser that Open returns: Copy into a pipe.
type logReader struct {
	*io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
}

// Open returns a reader of the console log at path, as Copy would write it.
// The read ends with io.EOF where Copy returns nil, or with Copy's error.
// ctx bounds the whole read, not just the call. Close ends the read (a
// follower too) and releases everything; always call it.
func Open(ctx context.Context, path string, opts Options) (io.ReadCloser, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	d, err := openLogDir(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	lr := &logReader{PipeReader: pr, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		_ = pw.CloseWithError(copyFrom(ctx, pw, d, opts, hooks{})) // nil: io.EOF
	}()
	return lr, nil
}

// Close ends the read and waits until everything is released.
func (l *logReader) Close() error {
	l.cancel()
	_ = l.PipeReader.Close()
	<-l.done
	return nil
}

// position is a place in the snapshot: a file and an offset in it.
type position struct {
	file int
	off  int64
}

// reader is one read of a log.
type reader struct {
	ctx   context.Context
	d     *logDir
	opts  Options
	hooks hooks
	w     *bufio.Writer
	buf   []byte // the cursors' buffer: one cursor reads at a time
	wake  *waker // nil unless following

	em  *emitter
	cur *cursor // on the newest file read so far; nil before there is one
	dec decoder // cur's
}

// run writes what is in the log now, from where Tail and Since say, then
// follows it if asked.
func (r *reader) run() error {
	files, err := r.d.snapshot()
	if errors.Is(err, errRemoved) {
		return messages.Errorf(messages.ErrNotFound, "%v", err)
	}
	if err != nil {
		return err
	}
	r.em = newEmitter(r.w, r.opts)
	from, end := position{}, position{file: -1}
	if r.opts.Tail != 0 && len(files) > 0 {
		var found bool
		if from, end, found, err = r.findTail(files); err != nil {
			closeFiles(files)
			return err
		}
		if !found {
			// TailNone: the first pass stopped at the end and its cursor,
			// decoder and emitter go on from there.
			closeFiles(files[:len(files)-1])
			if !r.opts.Follow {
				return nil
			}
			r.em.w, r.em.mark = r.w, nil
			return r.follow()
		}
	}
	closeFiles(files[:min(from.file, len(files))])
	for i := from.file; i < len(files); i++ {
		off := int64(0)
		if i == from.file {
			off = from.off
		}
		c := newCursor(files[i], r.buf, off)
		if i < len(files)-1 {
			var dec decoder
			err := r.consume(c, &dec, true)
			files[i].close()
			if err != nil {
				closeFiles(files[i+1:])
				return err
			}
			continue
		}
		if !r.opts.Follow && end.file == i {
			c.limit = end.off // exactly the lines the first pass counted
		}
		r.cur, r.dec = c, decoder{}
		if err := r.consume(r.cur, &r.dec, false); err != nil {
			return err
		}
	}
	if !r.opts.Follow {
		return nil
	}
	return r.follow()
}

// findTail reads the whole log once without writing, and returns where the
// last Tail shown lines start and where the log ends. found is false for
// TailNone: r.cur, r.dec and r.em are then left at the end, ready to go on.
func (r *reader) findTail(files []*logFile) (from, end position, found bool, err error) {
	n := max(r.opts.Tail, 0)
	starts := newRing(n)
	dry := newEmitter(nil, r.opts)
	fileIdx := 0
	dry.mark = func(off int64) { starts.push(position{file: fileIdx, off: off}) }
	var c *cursor
	var dec decoder
	for i, f := range files {
		fileIdx, dec = i, decoder{}
		c = newCursor(f, r.buf, 0)
		if err := r.consumeWith(c, &dec, dry, i < len(files)-1); err != nil {
			return from, end, false, err
		}
	}
	end = position{file: len(files) - 1, off: c.off}
	if n == 0 {
		r.cur, r.dec, r.em = c, dec, dry
		return from, end, false, nil
	}
	if starts.full() {
		return starts.oldest(), end, true, nil
	}
	return position{}, end, true, nil // fewer lines than asked: all of them
}

// follow reads what is appended to the newest file, and the files that
// rotation puts after it, until Ended is closed (then to the end) or ctx
// ends.
func (r *reader) follow() error {
	ended, isEnded := r.opts.Ended, false
	for {
		if r.cur != nil {
			if err := r.consume(r.cur, &r.dec, false); err != nil {
				return err
			}
		}
		switched, err := r.nextFiles()
		if errors.Is(err, errRemoved) || (err == nil && !switched && r.d.moved()) {
			return r.finishRemoved()
		}
		if err != nil {
			return err
		}
		if switched {
			continue
		}
		if err := r.w.Flush(); err != nil {
			return err
		}
		if isEnded {
			return nil
		}
		if r.hooks.waiting != nil {
			r.hooks.waiting()
		}
		select {
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-ended:
			// The box is at rest: look once more, then stop.
			ended, isEnded = nil, true
		case <-r.wake.wake():
		case <-r.wake.tick():
		}
	}
}

// finishRemoved ends a follower whose log's directory was removed (its box
// was, after coming to rest): what the file it holds has left is final.
func (r *reader) finishRemoved() error {
	if r.cur != nil {
		if err := r.consume(r.cur, &r.dec, true); err != nil {
			return err
		}
	}
	return r.w.Flush()
}

// nextFiles moves the reader on when the file it reads is no longer the
// log's current file (or when there was none and now is): it finishes that
// file (nothing is written to a file after it was renamed away, so its end
// is final), reads any files rotated in between, and goes on with the
// newest. switched is false when there is nothing newer yet.
func (r *reader) nextFiles() (switched bool, err error) {
	var cur *logFile
	if r.cur != nil {
		cur = r.cur.file
		if r.d.current(cur) {
			return false, nil
		}
	} else if !r.d.exists() {
		return false, nil
	}
	next, err := r.d.after(cur)
	if err != nil || len(next) == 0 {
		return false, err
	}
	if r.cur != nil {
		err = r.consume(r.cur, &r.dec, true)
		cur.close()
		r.cur = nil
		if err != nil {
			closeFiles(next)
			return false, err
		}
	}
	for i, f := range next[:len(next)-1] {
		var dec decoder
		err := r.consume(newCursor(f, r.buf, 0), &dec, true)
		f.close()
		if err != nil {
			closeFiles(next[i+1:])
			return false, err
		}
	}
	r.cur, r.dec = newCursor(next[len(next)-1], r.buf, 0), decoder{}
	return true, nil
}

// consume writes the complete lines that c can read now.
func (r *reader) consume(c *cursor, dec *decoder, complete bool) error {
	return r.consumeWith(c, dec, r.em, complete)
}

// ctxCheckEvery is how many pieces are handled between two looks at the
// context, so that a long read of a large log stops soon after it ends.
const ctxCheckEvery = 1024

// consumeWith hands what c can read now to em: its complete lines and, when
// the file is complete (renamed away: it will not grow), its unterminated
// end. The unterminated end of the current file is never shown: its writer
// may be finishing it (a shim killed in the middle of a write leaves one,
// which the next shim ends with a newline).
func (r *reader) consumeWith(c *cursor, dec *decoder, em *emitter, complete bool) error {
	for n := 1; ; n++ {
		if n%ctxCheckEvery == 0 {
			if err := r.ctx.Err(); err != nil {
				return err
			}
		}
		p, ok, err := c.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if err := em.emit(dec.decode(p)); err != nil {
			return err
		}
	}
	if !complete {
		return nil
	}
	p, ok, err := c.rest()
	if err != nil || !ok {
		return err
	}
	return em.emit(dec.decode(p))
}

// ring keeps the last n positions pushed.
type ring struct {
	n    int
	buf  []position
	next int // where the next push goes once buf is full
}

func newRing(n int) *ring { return &ring{n: n} }

func (r *ring) push(p position) {
	if r.n == 0 {
		return
	}
	if len(r.buf) < r.n {
		r.buf = append(r.buf, p)
		return
	}
	r.buf[r.next] = p
	r.next = (r.next + 1) % r.n
}

func (r *ring) full() bool { return r.n > 0 && len(r.buf) == r.n }

// oldest returns the oldest position kept (the ring must be full).
func (r *ring) oldest() position { return r.buf[r.next] }
