package main

import (
	"fmt"
	"io"
	"strings"
)

// streamTable writes a table one row at a time, each row as it comes: a
// tabwriter aligns only what it holds before a flush, and a stream is
// flushed after every row, so its columns would not line up. Each column is
// as wide as its widest cell so far (at least its minimum); a wider cell
// widens it for the rows that follow. The last column is not padded.
type streamTable struct {
	w      io.Writer
	widths []int
}

// newStreamTable writes the header, with each column at least min[i] wide.
func newStreamTable(w io.Writer, header []string, min []int) (*streamTable, error) {
	t := &streamTable{w: w, widths: make([]int, len(header))}
	for i := range header {
		t.widths[i] = max(len(header[i]), min[i])
	}
	return t, t.row(header...)
}

// row writes one row: cells separated by two spaces, padded to the width
// of their column.
func (t *streamTable) row(cells ...string) error {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 {
			b.WriteString(c)
			break
		}
		t.widths[i] = max(t.widths[i], len(c))
		fmt.Fprintf(&b, "%-*s  ", t.widths[i], c)
	}
	b.WriteByte('\n')
	_, err := io.WriteString(t.w, b.String())
	return err
}
