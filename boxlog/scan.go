package boxlog

import (
	"bytes"
	"io"
)

// scanBufSize is the reader's buffer: a line of a log file longer than this
// (a record's text is at most 16 KiB from the reference shim, but another
// writer may differ) is handled in pieces of this size.
const scanBufSize = 64 << 10

// piece is a line of a log file, or part of one that is longer than the
// buffer.
type piece struct {
	data []byte // without the newline; aliases the cursor's buffer
	off  int64  // offset of data's first byte in the file
	last bool   // data ends its line
}

// cursor reads the lines of one file of the log from an offset, with
// pread: the file's own offset is never used, and bytes appended later are
// read on the next call.
type cursor struct {
	file       *logFile
	buf        []byte
	start, end int   // buf[start:end] is read but not returned yet
	off        int64 // the file offset of buf[start]
	limit      int64 // read no further than this offset; < 0: no limit
	err        error // the read error that stopped the cursor, kept
}

func newCursor(f *logFile, buf []byte, off int64) *cursor {
	return &cursor{file: f, buf: buf, off: off, limit: -1}
}

// next returns the next piece; ok is false when none is complete yet: the
// file ends (for now) at a line boundary or inside a line, whose bytes are
// kept for the next call.
func (c *cursor) next() (p piece, ok bool, err error) {
	for {
		if i := bytes.IndexByte(c.buf[c.start:c.end], '\n'); i >= 0 {
			p = piece{data: c.buf[c.start : c.start+i], off: c.off, last: true}
			c.start += i + 1
			c.off += int64(i + 1)
			return p, true, nil
		}
		if c.end-c.start == len(c.buf) {
			p = piece{data: c.buf[c.start:c.end], off: c.off}
			c.off += int64(c.end - c.start)
			c.start, c.end = 0, 0
			return p, true, nil
		}
		n, err := c.fill()
		if n == 0 {
			return piece{}, false, err
		}
	}
}

// rest returns what follows the file's last newline: the unterminated end
// of a file that will not grow any more (a writer stopped in the middle of
// a line). ok is false when there is nothing.
func (c *cursor) rest() (p piece, ok bool, err error) {
	for {
		n, err := c.fill()
		if err != nil {
			return piece{}, false, err
		}
		if n == 0 || c.end == len(c.buf) {
			break
		}
	}
	if c.end == c.start {
		return piece{}, false, nil
	}
	p = piece{data: c.buf[c.start:c.end], off: c.off, last: true}
	c.off += int64(c.end - c.start)
	c.start, c.end = 0, 0
	return p, true, nil
}

// fill reads more of the file into the buffer; 0 at the end of the file
// (or of the limit).
func (c *cursor) fill() (int, error) {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	at := c.off + int64(c.end)
	want := c.buf[c.end:]
	if c.limit >= 0 && int64(len(want)) > c.limit-at {
		want = want[:max(c.limit-at, 0)]
	}
	if len(want) == 0 {
		return 0, nil
	}
	n, err := c.file.f.ReadAt(want, at)
	c.end += n
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// fragment is what a piece means: some text of one stream, ending a line
// or not.
type fragment struct {
	stream Stream // "" for a line that is not a record
	stamp  []byte // nil for a line that is not a record
	text   []byte
	eol    bool  // the text ends a line of the output
	off    int64 // the file offset of the piece
}

// decoder turns pieces into fragments. A record longer than the buffer
// arrives in pieces: the first carries its header, the others only text.
// Records never straddle two files, so a decoder serves one file.
type decoder struct {
	long     bool // inside a record that arrives in pieces
	stream   Stream
	stamp    []byte
	partial  bool
	stampBuf [40]byte
}

func (d *decoder) decode(p piece) fragment {
	if d.long {
		fr := fragment{stream: d.stream, stamp: d.stamp, text: p.data, off: p.off}
		if p.last {
			d.long = false
			fr.eol = !d.partial
		}
		return fr
	}
	r := parseRecord(p.data)
	fr := fragment{stream: r.stream, stamp: r.stamp, text: r.text, eol: p.last && !r.partial, off: p.off}
	if !p.last {
		d.long, d.stream, d.partial = true, r.stream, r.partial
		d.stamp = append(d.stampBuf[:0], r.stamp...)
		if r.stamp == nil {
			d.stamp = nil
		}
	}
	return fr
}
