package boxlog

import (
	"bufio"
	"time"
)

// emitter writes fragments out as the options ask. Its unit is the output
// line: text up to the next fragment that ends a line, as a terminal showing
// both streams would have shown it (with one stream selected, that
// stream's lines). Since and the timestamp apply per output line, using the
// time of the record that starts it.
type emitter struct {
	w          *bufio.Writer // nil: decide only (the tail's first pass)
	stream     Stream
	since      time.Time
	timestamps bool

	lineStart bool // the output is at the start of a line
	shown     bool // the current output line is shown

	// mark, when set, is called with the offset of each shown line's first
	// record (the tail's first pass collects them).
	mark func(off int64)
}

func newEmitter(w *bufio.Writer, opts Options) *emitter {
	return &emitter{w: w, stream: opts.Stream, since: opts.Since, timestamps: opts.Timestamps, lineStart: true}
}

// emit handles one fragment.
func (e *emitter) emit(fr fragment) error {
	if e.stream != "" && fr.stream != e.stream {
		return nil
	}
	atStart := e.lineStart
	e.lineStart = fr.eol
	if atStart {
		e.shown = e.passesSince(fr.stamp)
		if e.shown && e.mark != nil {
			e.mark(fr.off)
		}
	}
	if !e.shown || e.w == nil {
		return nil
	}
	if atStart && e.timestamps && fr.stamp != nil {
		_, _ = e.w.Write(fr.stamp)
		_ = e.w.WriteByte(' ')
	}
	_, _ = e.w.Write(fr.text)
	if fr.eol {
		_ = e.w.WriteByte('\n')
	}
	// bufio.Writer keeps its first error and returns it from every later
	// call: one check here stops a read whose reader went away.
	_, err := e.w.Write(nil)
	return err
}

// passesSince reports whether a line that starts with a record of this
// time is shown. Without Since every line is; with it, a line without a
// readable time (not a record) is not.
func (e *emitter) passesSince(stamp []byte) bool {
	if e.since.IsZero() {
		return true
	}
	if stamp == nil {
		return false
	}
	t, ok := parseStamp(stamp)
	return ok && !t.Before(e.since)
}
