package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/boxsup/boxsup/boxlog"
	"github.com/boxsup/boxsup/layout"
)

// readRecentLogLines returns the last n lines of box id's console output
// (across rotation), as consoleLineText renders them. It reads files only
// (package boxlog), so it works whoever supervises the box.
var readRecentLogLines = func(home, id string, n int) ([]string, error) {
	box, err := (&layout.Home{Root: home}).Box(id)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = boxlog.Copy(context.Background(), &buf, box.ConsoleLogPath(), boxlog.Options{Tail: n, Timestamps: true})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing written yet
	}
	if err != nil {
		return nil, err
	}
	text := strings.TrimRight(buf.String(), "\n")
	if text == "" {
		return nil, nil
	}
	lines := strings.Split(text, "\n")
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
