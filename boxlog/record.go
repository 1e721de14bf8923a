package boxlog

import (
	"bytes"
	"time"
)

// Stream is one of a guest's output streams.
type Stream string

// The streams a record names.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// minStampLen is the length of the shortest RFC 3339 time
// ("2006-01-02T15:04:05Z").
const minStampLen = 20

// record is one line of a log file. A line that is not a record (a log
// written before the shim recorded its console, or damaged) has no stamp
// and no stream: it is shown as it is, as a whole line of its own.
type record struct {
	stamp   []byte // the time as written; nil when the line is not a record
	stream  Stream // "" when the line is not a record
	partial bool   // tag P: the stream's next record continues the line
	text    []byte
}

// parseRecord parses one line of a log file (without its newline). The
// returned slices alias line. Tags may carry more after a colon ("F:x"), as
// CRI allows; only the first letter matters.
func parseRecord(line []byte) record {
	raw := record{text: line}
	sp := bytes.IndexByte(line, ' ')
	if sp < minStampLen {
		return raw
	}
	stamp, rest := line[:sp], line[sp+1:]
	if stamp[4] != '-' || stamp[7] != '-' || stamp[10] != 'T' {
		return raw
	}
	if sp = bytes.IndexByte(rest, ' '); sp < 0 {
		return raw
	}
	var stream Stream
	switch string(rest[:sp]) {
	case string(Stdout):
		stream = Stdout
	case string(Stderr):
		stream = Stderr
	default:
		return raw
	}
	rest = rest[sp+1:]
	tag, text := rest, []byte(nil)
	if sp = bytes.IndexByte(rest, ' '); sp >= 0 {
		tag, text = rest[:sp], rest[sp+1:]
	}
	if i := bytes.IndexByte(tag, ':'); i >= 0 {
		tag = tag[:i]
	}
	var partial bool
	switch string(tag) {
	case "F":
	case "P":
		partial = true
	default:
		return raw
	}
	return record{stamp: stamp, stream: stream, partial: partial, text: text}
}

// parseStamp parses a record's time; ok is false when it is not RFC 3339.
func parseStamp(stamp []byte) (t time.Time, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, string(stamp))
	return t, err == nil
}
