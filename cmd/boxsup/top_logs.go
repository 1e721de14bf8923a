package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"

	"github.com/boxsup/boxsup/layout"
)

// topLogTailBytes bounds what top reads of a console log for its recent
// lines: the end of the file only, however large it is.
const topLogTailBytes = 64 << 10

// readRecentLogLines returns the last n lines of box id's console output.
// It is a variable so that top can switch to the supervisor's log reader
// (the console's format and rotation are changing) without touching the
// view.
var readRecentLogLines = func(home, id string, n int) ([]string, error) {
	box, err := (&layout.Home{Root: home}).Box(id)
	if err != nil {
		return nil, err
	}
	f, err := box.OpenConsoleLog()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing written yet
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-topLogTailBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if off > 0 {
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:] // drop the partial first line
		}
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil, nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		lines[i] = consoleLineText(l)
	}
	return lines, nil
}

// consoleLineText renders one console line for the screen. A line in the
// CRI format ("2006-01-02T15:04:05.000000000Z stdout F text") is shown as
// "15:04:05 text" (stderr marked); anything else as it is. Control
// characters are replaced so that a guest cannot drive the terminal.
func consoleLineText(line string) string {
	if ts, rest, ok := strings.Cut(line, " "); ok && len(ts) >= 20 && ts[10] == 'T' && strings.HasSuffix(ts, "Z") {
		stream, rest, ok1 := strings.Cut(rest, " ")
		tag, text, ok2 := strings.Cut(rest, " ")
		if ok1 && ok2 && (stream == "stdout" || stream == "stderr") && (tag == "F" || tag == "P") {
			prefix := ts[11:19] + " "
			if stream == "stderr" {
				prefix += "! "
			}
			line = prefix + text
		}
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return '�'
		}
		return r
	}, line)
}
